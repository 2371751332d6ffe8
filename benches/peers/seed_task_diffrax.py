"""The seed task's loss and gradient in diffrax (JAX, reverse mode), for the side-by-side
with `cargo bench --features benches --bench gradient` (group gradient/seed_task_M100_EM600).

Same problem as the Rust benchmark: a 1-D neural SDE, drift u -> u^3 -> 20 tanh units -> 1,
diagonal diffusion u -> 20 sigmoid units -> 1 (122 parameters), 100 trajectories, 600
Euler-Maruyama steps on [-3, 3], mean-squared error of the ensemble mean at the 7 integer
times against exp(t) + 1. diffrax differentiates the discrete solve (its default
RecursiveCheckpointAdjoint). Compilation is excluded: the figure is the median of timed
calls of the jitted value-and-gradient function.

Usage: `python seed_task_diffrax.py [increments|unsafe|tree]` (repeats: $PEERS_REPEATS).
Prints one line: `diffrax seed_task seconds=<median> cpu_seconds=<median CPU time, all
threads> loss=<value> brownian=<path>`.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp
import diffrax
import equinox as eqx

jax.config.update("jax_platform_name", "cpu")

M, STEPS, T0, T1 = 100, 600, -3.0, 3.0
TIMES = jnp.arange(-3.0, 4.0)
DATA = jnp.exp(TIMES) + 1.0


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


def model(key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    drift = Drift(eqx.nn.Linear(1, 20, key=k1), eqx.nn.Linear(20, 1, key=k2))
    diffusion = Diffusion(eqx.nn.Linear(1, 20, key=k3), eqx.nn.Linear(20, 1, key=k4))
    return drift, diffusion


H = (T1 - T0) / STEPS


class Increments(diffrax.AbstractPath):
    """Brownian increments drawn up front, one per step (as tinysde draws one per step)."""

    dw: jax.Array
    t0: float = T0
    t1: float = T1

    def evaluate(self, t0, t1=None, left=True):
        step = jnp.clip(jnp.round((t0 - T0) / H).astype(jnp.int32), 0, STEPS - 1)
        return self.dw[step]


def brownian(key, kind):
    if kind == "increments":
        return Increments(jax.random.normal(key, (STEPS, 1)) * jnp.sqrt(H))
    if kind == "unsafe":
        return diffrax.UnsafeBrownianPath(shape=(1,), key=key)
    return diffrax.VirtualBrownianTree(T0, T1, tol=(T1 - T0) / STEPS / 2, shape=(1,), key=key)


def make_loss(kind):
    def solve(params, key):
        drift, diffusion = params
        terms = diffrax.MultiTerm(
            diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, brownian(key, kind))
        )
        sol = diffrax.diffeqsolve(
            terms,
            diffrax.Euler(),
            T0,
            T1,
            (T1 - T0) / STEPS,
            jnp.array([DATA[0]]),
            saveat=diffrax.SaveAt(ts=TIMES),
            max_steps=STEPS + 1,
        )
        return sol.ys[:, 0]

    def loss(params, keys):
        paths = jax.vmap(solve, in_axes=(None, 0))(params, keys)
        return jnp.mean((jnp.mean(paths, axis=0) - DATA) ** 2)

    return jax.jit(jax.value_and_grad(loss))


def main():
    repeats = int(os.environ.get("PEERS_REPEATS", "10"))
    params = model(jax.random.PRNGKey(1))
    keys = jax.random.split(jax.random.PRNGKey(3), M)
    # "increments" (default): one normal per step drawn up front, the closest to
    # tinysde's noise; "unsafe": diffrax.UnsafeBrownianPath; "tree": VirtualBrownianTree.
    kind = sys.argv[1] if len(sys.argv) > 1 else "increments"
    fn = make_loss(kind)
    value, grad = fn(params, keys)
    jax.block_until_ready(grad)
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        value, grad = fn(params, keys)
        jax.block_until_ready(grad)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    times.sort()
    cpu.sort()
    print(
        f"diffrax seed_task seconds={times[len(times) // 2]:.6f} "
        f"cpu_seconds={cpu[len(cpu) // 2]:.6f} loss={float(value):.6g} brownian={kind}"
    )


if __name__ == "__main__":
    main()
