"""The companion training stage: a compact retouching-operation extractor trained on
verified shards (``mirrorset train``).

Modules, one job each: ``config`` (TrainConfig from the ``train:`` section of
params.yaml), ``index`` (the build's wids shard index), ``gate`` (refuse unless the
verify report matches the shards), ``frames`` (decode and letterbox a view),
``data`` (stream quadruples with webdataset and a DataLoader), ``model`` and
``losses`` (the extractor and its objective), ``checkpoint`` (safetensors),
``loop`` (train, evaluate, resume), ``cli``. Details: docs/training.md.
"""
