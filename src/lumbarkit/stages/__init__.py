"""The analysis stages, one module each, numbered in the order they run.

``s1_segment`` (class probabilities per slice) -> ``s2_localize`` (named levels, VerSe label map)
-> ``s3_measure`` (heights, discs, slips, lordosis, canal) -> ``s4_crops`` (one aligned crop per
disc) -> ``s5_grade`` (Pfirrmann, Modic, findings) -> ``s6_hotspots`` (evidence maps).
Stages compute and return the typed results of :mod:`lumbarkit.results`; they never write files.
:class:`lumbarkit.pipeline.Pipeline` chains them.
"""
