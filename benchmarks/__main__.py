"""`python -m benchmarks`: every benchmark section; rewrites RESULTS.md."""

import os

# TensorFlow runs its oneDNN kernels by default only on x86 CPUs with
# AVX-512 VNNI/BF16 or AMX; elsewhere (e.g. AVX2 AMD EPYC) its PGD-10 AT
# step ran 2x slower without them (benchmarks/NOTES.md). The benchmark
# measures with them, as the README advises, unless TF_ENABLE_ONEDNN_OPTS
# is set; the `torch` section also measures the other setting. It must be
# set before TensorFlow is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from benchmarks.run import main  # noqa: E402

main()
