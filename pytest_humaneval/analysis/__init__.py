"""Analysis beyond pass@k: efficiency of passing programs (:mod:`.efficiency`), diagnosis of failing ones
(:mod:`.diagnosis`, :mod:`.judge`) and statistics shared by the report (:mod:`.stats`).

Measurements happen on the worker side (in the sandbox, next to the verdict) and travel on the test
report; aggregation over the run happens on the controller, in the report.
"""
