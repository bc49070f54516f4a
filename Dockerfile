# Astro Runtime 3.3-8 carries Apache Airflow 3.3.2, the version the dev venv pins (requirements-dev.txt);
# tests/image/astro_runtime.py records the mapping and its source, and `make test` checks the two agree.
# Python 3.12: the oldest Python this runtime ships (the dev venv runs 3.11, which it does not).
FROM astrocrpublic.azurecr.io/runtime:3.3-8-python-3.12
