"""Airflow DAG: the churnseg nightly job, one night per DAG run.

`{{ ds }}` is the logical date of the run (the night scored). One run at a time, since
runs on the same output directory take a lock; catch-up runs backfill old nights into
their own `as_of=` folders without moving `latest` back. Exit status 3 (a health guard
stopped the run: upstream data looks wrong) and 2 fail the task without retry.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="churnseg_nightly",
    start_date=datetime(2026, 7, 1),
    schedule="30 2 * * *",
    catchup=False,
    max_active_runs=1,
    # no retries: exit 2 (bad input) and exit 3 (guard) both need a person, and a
    # failed night has changed nothing, so rerunning it later is safe
    default_args={"retries": 0, "execution_timeout": timedelta(hours=2)},
    tags=["churn", "loyalty"],
) as dag:
    BashOperator(
        task_id="run",
        cwd="/srv/churnseg",
        bash_command=(
            "./churnseg --threads 8 --log-format json "
            "run pipelines/nightly.toml --as-of {{ ds }}"
        ),
    )
