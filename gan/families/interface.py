"""What a GAN family declares, and the step kit its train steps use.

The one training loop (gan/train/loop.py) knows no family: it validates,
opens the data, claims the workdir, builds the mesh, inits or restores the
state, compiles each phase's step once, runs, logs, guards non-finite values,
checkpoints, writes sample grids and stops on signals. A family (BigGAN,
ProGAN, ...) is a package under gan/families/ with a ``FAMILY`` object that
subclasses ``Family`` and says what is particular to it:

  config       its defaults, field rules and the checks that combine its fields
  modules      ``build`` (networks and optimisers: the static half of a run)
  state        ``init_state``: one pytree with at least ``step``, ``rng``, ``health``
  phases       ``phases``: the spans of a run with one compiled step each
               (BigGAN: one; ProGAN: one per resolution and fade/stable)
  step         ``train_step``: the pure step of a phase; ``host_batch``: its batch
  samples      ``sampler``: the sample grid of a state; ``eval_generator``: what
               evaluation (gan/evaluation/) draws its samples with

It knows nothing of checkpoints, logging, signals or workdirs. Its steps may
use this module's step kit (the non-finite guard, fault injection, sharding
constraints, image scaling, EMA), and nothing else of gan.train.
"""

import abc
import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan.config import run as run_config
from gan.train import health, sharding

Pytree = Any
StepFn = Callable[..., tuple[Pytree, dict]]  # (state, batch, *extras, rng) -> (state, metrics)

# ---- The step kit ----
guard = health.guard                     # keep the old state if a loss or gradient is non-finite
injected_factor = health.injected_factor  # NaN at config.train.inject_nonfinite_steps, else 1
parse_steps = run_config.parse_steps  # config.train.inject_nonfinite_steps -> steps
init_health = health.init_health
batch_sharding = sharding.batch_sharding  # shard along the mesh's data axis


def to_float_images(images: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return images.astype(jnp.float32) / 127.5 - 1.0


def ema_update(ema, new, decay):
  return jax.tree.map(lambda e, n: decay * e + (1.0 - decay) * n, ema, new)


# ---- What a family declares ----

@dataclasses.dataclass(frozen=True)
class Phase:
  """A span of a run with one compiled step.

  ``examples_per_step`` real images are consumed per step (all processes);
  ``label`` names the phase in logs and file names; ``log_fields`` are
  scalars logged with its metrics (e.g. resolution, batch size).
  """
  index: int
  label: str
  examples_per_step: int
  log_fields: dict = dataclasses.field(default_factory=dict)
  detail: Any = None  # the family's own description of the phase


@dataclasses.dataclass(frozen=True)
class TrainStep:
  """A phase's pure step and its other inputs.

  ``fn(state, batch, *extras, rng) -> (state, metrics)``: the loop jits it
  with the state replicated, the batch (``Family.host_batch``) sharded along
  ``example_axis`` of every leaf, extras and rng replicated, and donates the
  state. ``extras(images_shown)`` gives the inputs beyond the batch (ProGAN's alpha).
  """
  fn: StepFn
  example_axis: int
  extras: Callable[[int], tuple] = lambda images_shown: ()
  # Steps of one phase that compute different things (StyleGAN2's lazy regularisation
  # adds path length every 4th step and R1 every 16th): ``variant(step)`` names the
  # variant a step runs, ``variants[name]`` is its function (same inputs as ``fn``; its
  # metrics may add keys); "" is ``fn``. The loop compiles each variant once.
  variants: dict = dataclasses.field(default_factory=dict)
  variant: Callable[[int], str] = lambda step: ""

  def fn_of(self, variant: str) -> StepFn:
    return self.variants[variant] if variant else self.fn


@dataclasses.dataclass(frozen=True)
class Grid:
  """A sample grid: uint8 (H, W, 3), its file name and its TensorBoard tag."""
  image: np.ndarray
  file_name: str
  tag: str


@dataclasses.dataclass(frozen=True)
class EvalGenerator:
  """What evaluation draws samples with (gan/evaluation/protocol.py).

  ``fn(inputs, rng, count)`` -> (images float32 [-1, 1] (count, R, R, 3) at
  config.model.resolution, labels int32 (count,) or None) is pure; the
  evaluator compiles it once per ``key``, so a family returns the same ``fn``
  for the same key (e.g. per truncation, or per phase). ``inputs``: the arrays
  fixed over one evaluation (EMA weights, standing statistics, alpha).
  """
  fn: Callable
  inputs: Pytree
  key: Any
  conditional: bool
  description: str  # e.g. "EMA generator, standing statistics over 16 batches, truncation 0.5"


class Sampler(abc.ABC):
  @abc.abstractmethod
  def grid(self, state: Pytree, phase: Phase, step: int, images_shown: int) -> Grid:
    """The sample grid of ``state`` (EMA weights, fixed latents)."""

  def grids(self, state: Pytree, phase: Phase, step: int, images_shown: int) -> list[Grid]:
    """Every grid written at a sample step: ``grid`` and any others (StyleGAN's style mixing)."""
    return [self.grid(state, phase, step, images_shown)]


@dataclasses.dataclass(frozen=True)
class Upgrade:
  """An older layout of a family's state that restores and converts.

  ``old_target(target)``: ``target`` (the current state) with the old shapes, or
  None if it does not apply to this model; ``convert(old_state)``: the state in the
  current layout. ``change`` and ``conversion`` say what changed and how it is
  converted, for the WARNING a converted restore logs.
  """
  change: str
  conversion: str
  old_target: Callable[[Any], Any]
  convert: Callable[[Any], Any]


class Family(abc.ABC):
  """A GAN family; see the module docstring. One instance, ``FAMILY``, per package."""

  name: str                 # config.model.name
  defaults_name: str        # where a user's config starts, for error messages
  conditional: bool         # whether it reads class labels
  # Its config module, with field_rules(), check(config, num_devices, num_processes, valid)
  # and largest_step_input(config, valid), which the three methods below call.
  config_module: Any

  @abc.abstractmethod
  def defaults(self) -> ml_collections.ConfigDict:
    """Its default config, run-level fields included (gan.config.run.add_run_fields)."""

  def field_rules(self) -> dict:
    """{dotted path: rule} for every field it adds to the run-level ones."""
    return self.config_module.field_rules()

  def check(self, config, num_devices: int, num_processes: int,
            valid: Callable[..., bool]) -> list[str]:
    """Problems in combinations of its fields; ``valid(*paths)``: those fields passed."""
    return self.config_module.check(config, num_devices, num_processes, valid)

  def largest_step_input(self, config, valid) -> tuple[int, str] | None:
    """(most examples one step reads, the field that sets it), or None if unknown."""
    return self.config_module.largest_step_input(config, valid)

  def describe(self, config) -> str:
    """Lines logged at the start of a run: what this family will do."""
    return ""

  @abc.abstractmethod
  def make_pipeline(self, source, config, process_index: int, process_count: int):
    """The input pipeline over ``source`` (gan.data.pipeline.Pipeline) for this family."""

  @abc.abstractmethod
  def build(self, config) -> Any:
    """The static half of a run: modules and optimisers."""

  @abc.abstractmethod
  def init_state(self, model, config) -> Pytree:
    """A fresh state, deterministic in config.seed."""

  @abc.abstractmethod
  def phases(self, config) -> Sequence[Phase]:
    """Every phase of the run, in order."""

  @abc.abstractmethod
  def phase_at(self, config, step: int, images_shown: int) -> Phase:
    """The phase a step starting at these counters trains in."""

  @abc.abstractmethod
  def images_shown(self, config, state) -> int:
    """Real images shown so far (host-side, from the state's counters)."""

  @abc.abstractmethod
  def finished(self, config, step: int, images_shown: int) -> bool:
    """Whether the run is complete at these counters."""

  @abc.abstractmethod
  def total_steps(self, config) -> int:
    """The steps of a whole run (for progress and ETA)."""

  def phase_spans(self, config) -> list[tuple[str, int, int]]:
    """(label, first step, one past the last) of each phase, covering the whole run."""
    return [(self.phases(config)[0].label, 0, self.total_steps(config))]

  def state_phase(self, state) -> int | None:
    """The phase index the state's optimiser belongs to (None: single phase)."""
    return None

  def enter_phase(self, model, state, phase: Phase):
    """The state for starting ``phase`` (e.g. fresh optimiser moments)."""
    return state

  @abc.abstractmethod
  def train_step(self, model, config, phase: Phase, mesh) -> TrainStep:
    """The step of ``phase``; called once per phase (then compiled once)."""

  @abc.abstractmethod
  def host_batch(self, config, pipeline, phase: Phase, step: int, images_shown: int) -> Pytree:
    """This process's share of the batch of the step at these counters (numpy arrays)."""

  @abc.abstractmethod
  def sampler(self, model, config) -> Sampler:
    """What draws the sample grids of this run."""

  @abc.abstractmethod
  def eval_generator(self, model, config, state, images_shown: int,
                     truncation: float | None) -> EvalGenerator:
    """What evaluation samples ``state`` with (its EMA generator, as ``sampler`` does)."""

  def step_record(self, phase: Phase, images_shown: int) -> dict:
    """What the loop's ``history`` records of a step, beyond step and images shown."""
    return {}

  def checkpoint_upgrades(self, model) -> list:
    """Older layouts of this family's state that still restore
    (``Upgrade``); none by default."""
    return []
