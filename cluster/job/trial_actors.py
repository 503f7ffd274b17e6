"""Trial actors stay where Ray put them: Tune neither drops an actor a node is starting
nor stops an idle one while the search goes on.

Tune (2.60, ray/tune/execution/tune_controller.py) manages reused trial actors for
trials that come and go; ours are chunks of about half a second, handed out in bursts
(a Bayesian batch), with pauses while the next suggestions are computed. Two of its
decisions then cost the cluster its worker nodes:

- a pending trial takes any cached actor that has just come free, and the actor Ray was
  already starting for it is removed (`_maybe_reuse_cached_actor`). A worker node's
  first actor takes seconds to start (a new worker process, the runtime environment,
  the imports, the candle table pulled to the node), while the head's actors come free
  every half second: every actor a worker node starts is dropped before it is up;
- when trials end and none is waiting, all but one idle actor are stopped
  (`_maybe_cache_trial_actor`, `_cleanup_cached_actors`), and the next batch starts new
  ones: again slow on a worker node, so the head, whose actor survived, runs the batch.

Measured on this machine (4 seeds x 50 Bayesian trials, batch 4, 10,000 candles): on
two 1-CPU nodes the worker node ran 0 to 40 of the 200 trials without this module and
91 to 109 with it; on one node with 2 CPUs, the run started 4 trial actors instead of 2
(and dropped 37 it had asked for) and took 12.8-14.0 s instead of 7.2-7.6 s.

`keep_trial_actors()` changes three decisions, in this process only: a trial whose
actor already holds its resources (Ray is starting it) keeps that actor; an idle actor
is kept in Tune's cache while the search is not finished; the cache is not trimmed
until then. A cached actor still goes to any trial that has no actor yet and to one
whose actor waits for resources (Tune's reuse avoids a deadlock there: the cached
actor may hold the very CPU the pending one waits for). The actors kept are at most
the experiment's concurrent trials, the slots it reserves anyway; once the search is
finished Tune stops them as before. What changes is where and when trials run, never
their results: records do not depend on placement.

Tune's internals may move: the patch is applied only when the controller and its actor
manager have the attributes it reads (checked at entry, and Ray is pinned by the lock
file); otherwise Tune's own behaviour stays, and runs only use new nodes more slowly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_users = 0
_originals: dict[str, Any] = {}


def _started(controller: Any, tracked: Any) -> bool:
    return bool(
        tracked in controller._started_actors
        and not controller._actor_manager.is_actor_failed(tracked)
    )


def placed_but_starting(controller: Any, trial: Any) -> bool:
    """Whether `trial`'s own actor holds its resources and is still being started."""
    tracked = controller._trial_to_actor.get(trial)
    if tracked is None:
        return False
    manager = controller._actor_manager
    return (
        tracked in manager._live_actors_to_ray_actors_resources
        and not manager.is_actor_failed(tracked)
        and tracked not in controller._started_actors
    )


def _maybe_reuse_cached_actor(self: Any, trial: Any) -> bool:
    if placed_but_starting(self, trial):
        return False
    return bool(_originals["_maybe_reuse_cached_actor"](self, trial))


def _maybe_cache_trial_actor(self: Any, trial: Any) -> bool:
    if _originals["_maybe_cache_trial_actor"](self, trial):
        return True
    tracked = self._trial_to_actor.get(trial)
    if (
        not self._reuse_actors
        or self._search_alg.is_finished()
        or tracked is None
        or not _started(self, tracked)
    ):
        return False
    resources, room = trial.placement_group_factory, self._actor_cache.num_cached_objects + 1
    self._actor_cache.increase_max(resources, room)  # the cache takes this actor too...
    cached = self._actor_cache.cache_object(resources, tracked)
    self._actor_cache.decrease_max(resources, room)  # ...and keeps it (see below)
    if not cached:
        return False
    self._actor_to_trial.pop(self._trial_to_actor.pop(trial))
    trial.set_ray_actor(None)
    return True


def _cleanup_cached_actors(self: Any, force_all: bool = False) -> None:
    if not force_all and not self._search_alg.is_finished():
        return
    _originals["_cleanup_cached_actors"](self, force_all=force_all)


PATCHES = {
    "_maybe_reuse_cached_actor": _maybe_reuse_cached_actor,
    "_maybe_cache_trial_actor": _maybe_cache_trial_actor,
    "_cleanup_cached_actors": _cleanup_cached_actors,
}


def patchable(controller_class: Any) -> bool:
    """Whether Tune's controller still has what the patches read and replace."""
    from ray.air.execution._internal.actor_manager import RayActorManager
    from ray.tune.utils.object_cache import _ObjectCache

    controller_fields = set(controller_class.__init__.__code__.co_names)
    return (
        all(callable(getattr(controller_class, name, None)) for name in PATCHES)
        and {"_trial_to_actor", "_actor_to_trial", "_started_actors", "_actor_manager",
             "_actor_cache", "_reuse_actors", "_search_alg"} <= controller_fields
        and "_live_actors_to_ray_actors_resources" in RayActorManager.__init__.__code__.co_names
        and callable(getattr(RayActorManager, "is_actor_failed", None))
        and all(callable(getattr(_ObjectCache, name, None))
                for name in ("increase_max", "decrease_max", "cache_object"))
        and isinstance(getattr(_ObjectCache, "num_cached_objects", None), property)
    )  # fmt: skip


@contextmanager
def keep_trial_actors() -> Iterator[bool]:
    """While inside, Tune keeps its trial actors (module docstring); yields whether the
    patches are in place. Re-entrant and thread-safe (concurrent runs share them)."""
    global _users
    from ray.tune.execution.tune_controller import TuneController

    with _lock:
        if _users == 0 and patchable(TuneController):
            for name, patch in PATCHES.items():
                _originals[name] = getattr(TuneController, name)
                setattr(TuneController, name, patch)
        _users += 1
        patched = bool(_originals)
    try:
        yield patched
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                for name, original in _originals.items():
                    setattr(TuneController, name, original)
                _originals.clear()
