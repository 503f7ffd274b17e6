"""The shared Ray fixture gives a real, private local Ray with the requested CPUs."""

import pytest

RAY_INIT = {"num_cpus": 2}


@pytest.mark.ray
def test_ray_local_runs_a_task_on_a_fresh_local_instance(ray_local):
    ray = ray_local

    @ray.remote
    def square(x: int) -> int:
        return x * x

    assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
    assert ray.cluster_resources()["CPU"] == 2.0
