"""`python -m benchmarks`: every benchmark section; rewrites RESULTS.md."""

from benchmarks.run import main

main()
