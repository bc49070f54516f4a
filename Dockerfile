# Astro Runtime 3.3 ships Apache Airflow 3.3.x; requirements.txt pins the providers this package uses.
FROM astrocrpublic.azurecr.io/runtime:3.3-2
