"""The RSNA 2024 lumbar spine stenosis track on Kaggle-format data (``lumbarkit rsna check | train | predict | score``).

Modules: :mod:`.format` (layout, names, weights), :mod:`.dataset` (reading a folder and what in it cannot be used),
:mod:`.geometry` (DICOM planes in patient mm, axial images assigned to levels), :mod:`.crops` (levels from stage 1
and a crop per condition and level), :mod:`.train` (cross-validation and the final model; needs ``[train]``),
:mod:`.model` (the ONNX model folder), :mod:`.predict` (submission rows with fallbacks), :mod:`.rule` (canal AP rule
without a model), :mod:`.metric` (the competition score), :mod:`.card` (model card), :mod:`.analysis` (the 25
severities inside ``analyze``).
"""
