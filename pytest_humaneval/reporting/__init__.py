"""Step 6 of the data path, on the controller (or in the Python API): the verdicts as reports.

:mod:`.report` aggregates the verdicts into pass@k and the JSON report (its shape: :mod:`.schema`, types
only, which every step that writes a part of the report imports) and reads it back as the terminal
summary, the step summary and the JUnit properties; :mod:`.provenance` says where the numbers came from;
:mod:`.html` renders the HTML page (and pytest-html's extras).
"""
