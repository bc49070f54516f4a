"""The runbook's first fixes as approved, audited, verified actions (the remediate_* DAGs).

preconditions + plan (pure, in plans.py) -> a person's approval -> act (actions.py) -> audit row ->
verify (verification.py: the checks it fixes, before and after). flow.py wires them into a DAG.
"""
