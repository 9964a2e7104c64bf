"""``%cluster new dask_jobqueue.SLURMCluster`` against a real one-node Slurm (munge, slurmctld,
slurmd from Debian, on 127.0.0.1), from a real kernel: every worker is a job submitted with sbatch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_servers import Slurm, started, wait_until
from kernel_helpers import Kernel

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def slurm(tmp_path: Path) -> Iterator[Slurm]:
    yield from started(Slurm, tmp_path)


def test_slurm_jobs_are_the_workers_scale_and_adapt_submit_and_cancel_them_and_stop_leaves_none(
        slurm: Slurm) -> None:
    logs = slurm.dir / "logs"
    with Kernel(slurm.env) as kernel:
        kernel.ok("%load_ext ipydistribute")
        shown = kernel.ok("%cluster new dask_jobqueue.SLURMCluster cores=1 processes=1 memory='1GB' "
                          "walltime='00:10:00' interface='lo' scheduler_options={'dashboard_address': "
                          f"'127.0.0.1:0'}} log_directory='{logs}'")
        assert any(o["msg_type"] == "display_data" for o in shown.outputs), shown.text
        assert slurm.jobs() == []

        kernel.ok("%cluster scale 2")
        wait_until(lambda: len(slurm.jobs()) == 2, 60, "scale 2 did not submit 2 jobs")
        kernel.ok("import ipydistribute\nipydistribute.get_client().wait_for_workers(2, timeout=120)", timeout=180)
        ran = kernel.ok("%%distribute x in range(6) --view none\nimport os\nprint('job', os.environ['SLURM_JOB_ID'])\n"
                        "x * x")
        assert "[0, 1, 4, 9, 16, 25]" in ran.text, ran.text
        ran_in = {line.split()[-1] for line in ran.text.splitlines() if "job " in line}
        assert ran_in and ran_in <= set(slurm.jobs()), (ran_in, slurm.jobs())  # the items ran inside the jobs

        kernel.ok("%cluster scale 1")
        wait_until(lambda: len(slurm.jobs()) == 1, 60, "scale 1 did not cancel a job")

        # adaptive from 0: idle, its job is cancelled; a cell's tasks submit one again
        kernel.ok("%cluster adapt 0 2")
        wait_until(lambda: not slurm.jobs(), 90, "adapt 0 2 did not cancel the idle job")
        ran = kernel.ok("%%distribute x in range(4) --view none\nx + 1", timeout=240)
        assert "[1, 2, 3, 4]" in ran.text, ran.text

        assert "stopped" in kernel.ok("%cluster stop").text
        wait_until(lambda: not slurm.jobs(), 60, "%cluster stop left jobs in squeue")

        kernel.ok(f"%cluster new dask_jobqueue.SLURMCluster cores=1 memory='1GB' interface='lo' "
                  "scheduler_options={'dashboard_address': '127.0.0.1:0'} "
                  f"log_directory='{logs}'\n%cluster scale 1")
        wait_until(lambda: len(slurm.jobs()) == 1, 60, "scale 1 did not submit a job")
    wait_until(lambda: not slurm.jobs(), 60, "a kernel shutdown left jobs in squeue")
