# Astro Runtime 3.3-8 carries Apache Airflow 3.3.2, the version the dev venv pins (requirements-dev.txt);
# source: Astronomer's runtime feed as cut into astro-cli's pkg/runtimeversions/testdata/catalog.json
# (tests/image/astro_runtime.py records the mapping; `make test` checks the two agree).
# Python 3.12: the oldest Python this runtime ships (the dev venv runs 3.11, which it does not).
FROM astrocrpublic.azurecr.io/runtime:3.3-8-python-3.12
