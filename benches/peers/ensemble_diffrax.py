"""An ensemble solve of the seed model in diffrax (JAX, jit), for the side-by-side with
`cargo bench --features benches --bench ensemble -- em M` (benches/ensemble.rs).

Same problem as the Rust side: a 1-D SDE, drift u -> u^3 -> Dense(1, 20, tanh) -> Dense(20, 1),
diagonal diffusion u -> Dense(1, 20, sigmoid) -> Dense(20, 1) (122 parameters). tinysde uses
its rational approximations of tanh and the sigmoid ("fast"); here they are jnp.tanh and
jax.nn.sigmoid, XLA's own. Euler-Maruyama (diffrax.Euler on an Ito SDE), `steps` steps on
[-3, 3] from u0 = e^-3 + 1, M trajectories under jax.vmap, each with its Brownian increments
drawn up front (one normal per step, inside the jitted function, as tinysde draws one per
step inside its solve), saved at t = -3, -2, ..., 3; the result is the mean and the sample
variance over the trajectories at those times, as tinysde's `Solver::ensemble` returns.

The figure excludes compilation: after one warm-up call, each sample times enough calls
(each ended by block_until_ready) to last at least 20 ms and divides by their number; the
median of $PEERS_REPEATS samples (default 10) is printed, in seconds per solve: wall-clock
(`seconds`) and the process's time on the CPU, all its threads (`cpu_seconds`,
time.process_time), which leaves out the time other processes held the core.

Usage: `python ensemble_diffrax.py [M] [steps]` (defaults 100 and 600). Prints one line:
`diffrax ensemble method=em M=<M> steps=<steps> seconds=<median> cpu_seconds=<median>
min_seconds=<fastest sample> ns_per_trajectory_step=<from seconds> steps_taken=<diffrax's
step count> samples=<n> calls_per_sample=<k> mean_at_t1=<...>`.
"""

import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import diffrax
import equinox as eqx

jax.config.update("jax_platform_name", "cpu")

T0, T1 = -3.0, 3.0
TIMES = jnp.arange(-3.0, 4.0)
U0 = jnp.array([math.exp(-3.0) + 1.0])
MIN_SAMPLE_SECONDS = 0.02


class Drift(eqx.Module):
    hidden: eqx.nn.Linear
    out: eqx.nn.Linear

    def __call__(self, t, y, args):
        return self.out(jnp.tanh(self.hidden(y**3)))


class Diffusion(eqx.Module):
    hidden: eqx.nn.Linear
    out: eqx.nn.Linear

    def __call__(self, t, y, args):
        # Diagonal noise with one channel: a 1x1 matrix times the 1-vector dW.
        return self.out(jax.nn.sigmoid(self.hidden(y)))[:, None]


class Increments(diffrax.AbstractPath):
    """Brownian increments drawn up front, one per step."""

    dw: jax.Array
    h: float
    t0: float = T0
    t1: float = T1

    def evaluate(self, t0, t1=None, left=True):
        steps = self.dw.shape[0]
        step = jnp.clip(jnp.round((t0 - T0) / self.h).astype(jnp.int32), 0, steps - 1)
        return self.dw[step]


def make_ensemble(m, steps):
    h = (T1 - T0) / steps

    def solve(params, key):
        drift, diffusion = params
        dw = jax.random.normal(key, (steps, 1)) * jnp.sqrt(h)
        terms = diffrax.MultiTerm(
            diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, Increments(dw, h))
        )
        sol = diffrax.diffeqsolve(
            terms,
            diffrax.Euler(),
            T0,
            T1,
            h,
            U0,
            saveat=diffrax.SaveAt(ts=TIMES),
            max_steps=steps + 1,
        )
        return sol.ys[:, 0], sol.stats["num_steps"]

    @jax.jit
    def ensemble(params, keys):
        paths, num_steps = jax.vmap(solve, in_axes=(None, 0))(params, keys)
        mean = jnp.mean(paths, axis=0)
        # Sample variance (divisor M - 1), 0 for one trajectory, as tinysde.
        var = jnp.var(paths, axis=0, ddof=1) if m > 1 else jnp.zeros_like(mean)
        return mean, var, num_steps[0]

    return ensemble


def main():
    m = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    repeats = int(os.environ.get("PEERS_REPEATS", "10"))
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(1), 4)
    params = (
        Drift(eqx.nn.Linear(1, 20, key=k1), eqx.nn.Linear(20, 1, key=k2)),
        Diffusion(eqx.nn.Linear(1, 20, key=k3), eqx.nn.Linear(20, 1, key=k4)),
    )
    keys = jax.random.split(jax.random.PRNGKey(3), m)
    ensemble = make_ensemble(m, steps)

    # Compile (and warm up) outside the timed samples.
    mean, var, steps_taken = jax.block_until_ready(ensemble(params, keys))
    start = time.perf_counter()
    jax.block_until_ready(ensemble(params, keys))
    once = time.perf_counter() - start
    calls = max(1, math.ceil(MIN_SAMPLE_SECONDS / max(once, 1e-9)))

    samples, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            jax.block_until_ready(ensemble(params, keys))
        samples.append((time.perf_counter() - start) / calls)
        cpu.append((time.process_time() - start_cpu) / calls)
    samples.sort()
    cpu.sort()
    seconds = samples[len(samples) // 2]
    if not bool(jnp.all(jnp.isfinite(mean))):
        sys.exit("diffrax ensemble: the mean is not finite")
    print(
        f"diffrax ensemble method=em M={m} steps={steps} seconds={seconds:.9f} "
        f"cpu_seconds={cpu[len(cpu) // 2]:.9f} min_seconds={samples[0]:.9f} "
        f"ns_per_trajectory_step={seconds * 1e9 / (m * steps):.1f} "
        f"steps_taken={int(steps_taken)} samples={repeats} calls_per_sample={calls} "
        f"mean_at_t1={float(mean[-1]):.4g}"
    )


if __name__ == "__main__":
    main()
