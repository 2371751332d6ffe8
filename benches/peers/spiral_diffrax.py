"""The DiffEqFlux neural SDE tutorial's training protocol ("spiral") in diffrax + optax, for
the side-by-side with `cargo bench --features benches --bench spiral_protocol`.

Data: mean and variance at 30 times in [0, 1] of 10,000 paths of the true system
du = ((u^3)' A)' dt + 0.2 u dW from u0 = [2, 0] (Euler-Maruyama, 10 steps per save
interval). Model: drift u -> u^3 -> Dense(2, 50, tanh) -> Dense(50, 2), diffusion
Dense(2, 2) (linear, diagonal noise): 258 parameters. Solver: Euler-Maruyama, one step per
save interval (29 steps; diffrax has no SOSRI), Brownian increments drawn up front per
iteration. Loss: sum of squared errors of the means plus of the variances (sample
variance, n - 1). Training: Adam(0.025) with n = 10 for 100 iterations, then Adam(0.01)
with n = 100 for 200, fresh noise per iteration, keeping the parameters of the lowest
training loss seen (as tinysde's trainer does, across both phases); final loss
of those with n = 1000 on held-out noise. The time is the training loop's wall time,
after compiling both phases' step functions.

Prints one line: `diffrax spiral seconds=<training> cpu_seconds=<its CPU time, all threads>
final_loss=<n = 1000> initial_loss=<...>`.
"""

import time

import jax
import jax.numpy as jnp
import diffrax
import equinox as eqx
import lineax
import optax

jax.config.update("jax_platform_name", "cpu")

SAVES, STEPS = 30, 29
TIMES = jnp.linspace(0.0, 1.0, SAVES)
U0 = jnp.array([2.0, 0.0])
A = jnp.array([[-0.1, 2.0], [-2.0, -0.1]])


class Drift(eqx.Module):
    hidden: eqx.nn.Linear
    out: eqx.nn.Linear

    def __call__(self, t, y, args):
        return self.out(jnp.tanh(self.hidden(y**3)))


class Diffusion(eqx.Module):
    linear: eqx.nn.Linear

    def __call__(self, t, y, args):
        return self.linear(y)


class Increments(diffrax.AbstractPath):
    dw: jax.Array
    t0: float = 0.0
    t1: float = 1.0

    def evaluate(self, t0, t1=None, left=True):
        steps = self.dw.shape[0]
        step = jnp.clip(jnp.round(t0 * steps).astype(jnp.int32), 0, steps - 1)
        return self.dw[step]


def data(key, paths=10_000, fine=10):
    steps = STEPS * fine
    h = 1.0 / steps

    def path(k):
        dw = jax.random.normal(k, (steps, 2)) * jnp.sqrt(h)

        def step(u, w):
            u = u + ((u**3) @ A) * h + 0.2 * u * w
            return u, u

        _, us = jax.lax.scan(step, U0, dw)
        us = jnp.concatenate([U0[None], us])
        return us[::fine]

    ys = jax.vmap(path)(jax.random.split(key, paths))
    return ys.mean(0), ys.var(0, ddof=1)


def solve(params, key):
    drift, diffusion = params
    dw = jax.random.normal(key, (STEPS, 2)) * jnp.sqrt(1.0 / STEPS)
    terms = diffrax.MultiTerm(
        diffrax.ODETerm(drift),
        diffrax.ControlTerm(
            lambda t, y, args: lineax.DiagonalLinearOperator(diffusion(t, y, args)),
            Increments(dw),
        ),
    )
    sol = diffrax.diffeqsolve(
        terms,
        diffrax.Euler(),
        0.0,
        1.0,
        1.0 / STEPS,
        U0,
        saveat=diffrax.SaveAt(ts=TIMES),
        max_steps=STEPS + 1,
    )
    return sol.ys


def loss_fn(params, keys, mean, var):
    ys = jax.vmap(solve, in_axes=(None, 0))(params, keys)
    return jnp.sum((ys.mean(0) - mean) ** 2) + jnp.sum((ys.var(0, ddof=1) - var) ** 2)


def main():
    mean, var = data(jax.random.PRNGKey(11))
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
    params = (
        Drift(eqx.nn.Linear(2, 50, key=k1), eqx.nn.Linear(50, 2, key=k2)),
        Diffusion(eqx.nn.Linear(2, 2, key=k3)),
    )
    held_out = jax.random.split(jax.random.PRNGKey(0x5EED), 1000)
    evaluate = jax.jit(loss_fn)
    initial = float(evaluate(params, held_out, mean, var))

    phases = [(0.025, 10, 100), (0.01, 100, 200)]
    steps = {}
    for lr, n, _ in phases:
        opt = optax.adam(lr)

        @jax.jit
        def step(params, state, keys, opt=opt):
            value, grad = jax.value_and_grad(loss_fn)(params, keys, mean, var)
            updates, state = opt.update(grad, state, params)
            return optax.apply_updates(params, updates), state, value

        # Compile outside the timed loop.
        jax.block_until_ready(step(params, opt.init(params), jax.random.split(jax.random.PRNGKey(1), n)))
        steps[lr] = (opt, step)

    key = jax.random.PRNGKey(5)
    best, best_loss = params, float("inf")
    start, start_cpu = time.perf_counter(), time.process_time()
    for lr, n, iterations in phases:
        opt, step = steps[lr]
        state = opt.init(params)
        for _ in range(iterations):
            key, sub = jax.random.split(key)
            new_params, state, value = step(params, state, jax.random.split(sub, n))
            value = float(value)
            if value < best_loss:
                best, best_loss = params, value
            params = new_params
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    final = float(evaluate(best, held_out, mean, var))
    print(
        f"diffrax spiral seconds={seconds:.3f} cpu_seconds={cpu_seconds:.3f} "
        f"final_loss={final:.4f} initial_loss={initial:.4f}"
    )


if __name__ == "__main__":
    main()
