# The project's Airflow image: Airflow 3.3 with the locked dependencies, WeasyPrint's system
# libraries, the revops package, the DAGs and the plugin. docker-compose.yml runs every
# Airflow component from it.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core curl \
 && rm -rf /var/lib/apt/lists/*

ENV AIRFLOW_HOME=/opt/airflow \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/revops

COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock

COPY plugins/ plugins/
COPY dags/ dags/
COPY include/ include/
RUN pip install --no-cache-dir --no-deps -e .

RUN useradd --create-home --uid 50000 airflow && mkdir -p /opt/airflow /data && chown -R airflow /opt/airflow /data
USER airflow
