//! Time grids and step plans: the uniform grid steps exactly as before, grids through any
//! save times keep the methods' strong orders, and save times are matched by index, not by
//! an absolute epsilon.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tinysde::nn::ParamSeed;
use tinysde::noise::{normal_from_bits, splitmix64, Brownian, Increment, NoiseSource};
use tinysde::sde::Sde;
use tinysde::solve::{
    self, EulerMaruyama, Integrator, Method, Milstein, PlanEvent, PlannedStep, SolveRequest,
    Solver, Sosri, Spacing, Step, TimeGrid,
};
use tinysde::{Error, NoiseKind, Real};

/// Itô geometric Brownian motion du = 1.01 u dt + 0.87 u dW.
struct Gbm;
impl<T: Real> Sde<T, 1> for Gbm {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * 1.01]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * 0.87]
    }
}

fn steps_of(grid: &TimeGrid, times: &[f32]) -> Vec<PlannedStep> {
    grid.plan(times)
        .unwrap()
        .filter_map(|e| match e {
            PlanEvent::Step(s) => Some(s),
            PlanEvent::Save(_) => None,
        })
        .collect()
}

/// The solver loop as it was before step plans: `t = t0 + k h`, one `h`, saves at grid
/// indices. The uniform grid must reproduce it bit for bit.
fn solve_the_old_way<M: Step<f32, Gbm, 1>>(
    method: &M,
    grid: &TimeGrid,
    noise: &Brownian,
    m: usize,
    save_steps: &[u32],
) -> Vec<f32> {
    let mut u = [0.5f32];
    let mut out = Vec::new();
    let last = *save_steps.last().unwrap();
    for k in 0..=last {
        if save_steps.contains(&k) {
            out.push(u[0]);
        }
        if k == last {
            break;
        }
        let inc = noise.increment::<1>(m, k, grid.h(), M::NEEDS_DZ).unwrap();
        u = method.step(
            &Gbm,
            grid.t0() + k as f32 * grid.h(),
            grid.h(),
            &u,
            &inc,
            ParamSeed::NONE,
        );
    }
    out
}

#[test]
fn the_uniform_grid_steps_exactly_as_before() {
    let noise = Brownian::new(3);
    for (grid, save_steps) in [
        (TimeGrid::new(0.0, 1.0, 40).unwrap(), vec![0u32, 10, 25, 40]),
        (
            TimeGrid::new(-3.0, 3.0, 60).unwrap(),
            vec![0, 10, 20, 30, 40, 50, 60],
        ),
        (TimeGrid::new(0.0, 1.0, 100).unwrap(), vec![3, 30, 97]),
    ] {
        let times: Vec<f32> = save_steps.iter().map(|&k| grid.time(k)).collect();
        for m in 0..3 {
            let mut out = vec![[0.0f32]; times.len()];
            let solver = Solver::new(Sosri, grid);
            solve::solve(
                &solver,
                &Gbm,
                &noise,
                &SolveRequest::new([0.5], &times).trajectory(m),
                &mut out,
            )
            .unwrap();
            let old = solve_the_old_way(&Sosri, &grid, &noise, m, &save_steps);
            let new: Vec<f32> = out.iter().map(|u| u[0]).collect();
            assert_eq!(
                new.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                old.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
            // A grid through the save times with the same budget takes the same steps
            // when the save times are grid points.
            let through = TimeGrid::through(grid.t0(), grid.t1(), grid.steps()).unwrap();
            assert_eq!(steps_of(&through, &times), steps_of(&grid, &times));
            let mut out2 = vec![[0.0f32]; times.len()];
            solve::solve(
                &Solver::new(Sosri, through),
                &Gbm,
                &noise,
                &SolveRequest::new([0.5], &times).trajectory(m),
                &mut out2,
            )
            .unwrap();
            assert_eq!(out, out2);
        }
    }
}

#[test]
fn fine_grids_accept_every_exact_grid_point() {
    let grid = TimeGrid::new(0.0, 1.0, 100_000).unwrap();
    // Refused by the old absolute tolerance (h / 1000 = 1e-8).
    assert!(grid.check_save_times(&[0.2, 0.3, 0.4, 0.6]).is_ok());
    assert_eq!(grid.index_of(0.3), Some(30_000));
    for k in 0..=100_000 {
        assert_eq!(grid.index_of(grid.time(k)), Some(k), "k = {k}");
    }
    // Between grid points is still refused, on a coarse grid too.
    assert_eq!(grid.index_of(0.3 + 0.5e-5), None);
    let coarse = TimeGrid::new(-3.0, 3.0, 60).unwrap();
    assert_eq!(coarse.index_of(0.05), None);
    assert_eq!(coarse.index_of(0.1), Some(31));
    assert_eq!(coarse.index_of(3.0), Some(60));
    assert_eq!(coarse.index_of(3.001), None);
    assert_eq!(
        coarse.check_save_times(&[0.0, 0.05]),
        Err(Error::SaveTime { index: 1 })
    );
}

#[test]
fn the_spiral_save_times_take_one_hundred_steps() {
    let times: Vec<f32> = (0..30).map(|i| i as f32 / 29.0).collect();
    assert!(TimeGrid::new(0.0, 1.0, 100)
        .unwrap()
        .check_save_times(&times)
        .is_err());
    let grid = TimeGrid::through(0.0, 1.0, 100).unwrap();
    assert_eq!(grid.check_save_times(&times), Ok(100));
    let steps = steps_of(&grid, &times);
    assert_eq!(steps.len(), 100);
    // 29 segments of 1/29: 3 or 4 equal steps each, never longer than 1/87.
    assert!(steps
        .iter()
        .all(|s| s.h <= 1.0 / 87.0 * 1.000_01 && s.h >= 1.0 / 116.0 * 0.999_99));
    let with_max = TimeGrid::with_max_step(0.0, 1.0, 0.01).unwrap();
    assert_eq!(steps_of(&with_max, &times).len(), 116);
    // A 2-D solve through them saves the right number of states.
    let mut out = vec![[0.0f32]; 30];
    solve::solve(
        &Solver::new(Sosri, grid),
        &Gbm,
        &Brownian::new(1),
        &SolveRequest::new([0.5], &times),
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0], [0.5]);
    assert!(out.iter().all(|u| u[0].is_finite() && u[0] > 0.0));
}

/// Checks the invariants of a plan: steps numbered 0, 1, 2, ..., each starting where the
/// previous one ended (up to rounding), saves in order, each exactly when the steps reach
/// its time.
fn check_plan(grid: &TimeGrid, times: &[f32]) {
    let last = grid.check_save_times(times).unwrap();
    let tol = 1e-4 * (grid.t1() - grid.t0()).max(1.0);
    let (mut k, mut t, mut saves) = (0u32, grid.t0(), 0usize);
    for event in grid.plan(times).unwrap() {
        match event {
            PlanEvent::Save(i) => {
                assert_eq!(i, saves);
                assert!(
                    (t - times[i]).abs() <= tol,
                    "save {i} at {t}, wanted {}",
                    times[i]
                );
                saves += 1;
            }
            PlanEvent::Step(s) => {
                assert_eq!(s.k, k);
                assert!(
                    (s.t - t).abs() <= tol,
                    "step {k} starts at {}, expected {t}",
                    s.t
                );
                assert!(s.h > 0.0);
                if grid.spacing() == tinysde::solve::Spacing::MaxStep {
                    assert!(
                        s.h <= grid.h() * (1.0 + 2e-4),
                        "step {} > {}",
                        s.h,
                        grid.h()
                    );
                }
                t = s.t + s.h;
                k += 1;
            }
        }
    }
    assert_eq!(saves, times.len());
    assert_eq!(k, last);
}

proptest! {
    #[test]
    fn plans_through_any_save_times_step_to_every_save_time(
        gaps in prop::collection::vec(1e-3f32..0.7, 1..40),
        steps in 1u32..300,
        h_max in 1e-3f32..0.5,
        start_at_t0 in any::<bool>(),
    ) {
        let t0 = -1.0f32;
        let mut times = Vec::new();
        let mut t = t0;
        if start_at_t0 {
            times.push(t0);
        }
        for g in gaps {
            t += g;
            times.push(t);
        }
        let t1 = t;
        check_plan(&TimeGrid::through(t0, t1, steps).unwrap(), &times);
        check_plan(&TimeGrid::with_max_step(t0, t1, h_max).unwrap(), &times);
        // Budget respected up to one step per save time closer than half a step.
        let n = TimeGrid::through(t0, t1, steps).unwrap().check_save_times(&times).unwrap();
        prop_assert!(n as usize <= steps as usize + times.len());
    }
}

/// What a cursor must give, read off the forward plan: the steps in order, and for each
/// step index `0..=last` the save time the plan saves there (if any).
fn plan_reference(grid: &TimeGrid, times: &[f32]) -> (Vec<PlannedStep>, Vec<Option<usize>>) {
    let mut steps = Vec::new();
    let mut saves = vec![None];
    for event in grid.plan(times).unwrap() {
        match event {
            PlanEvent::Step(s) => {
                steps.push(s);
                saves.push(None);
            }
            PlanEvent::Save(i) => *saves.last_mut().unwrap() = Some(i),
        }
    }
    (steps, saves)
}

/// The step indices a query sequence visits: whole walks forwards and backwards, the
/// checkpointed backward pass (each segment stepped forwards, then walked backwards) and
/// random jumps, each past both ends too.
fn query_orders(last: u32, interval: u32, jumps: &[u32]) -> Vec<u32> {
    let mut ks: Vec<u32> = (0..=last + 2).collect();
    ks.extend((0..=last + 2).rev());
    let mut end = last;
    loop {
        let start = end.saturating_sub(interval.max(1));
        ks.extend(start..end);
        ks.extend((start..=end).rev());
        if start == 0 {
            break;
        }
        end = start;
    }
    ks.extend(jumps.iter().map(|j| j % (last + 3)));
    ks.extend([u32::MAX, 0, last, u32::MAX - 1]);
    ks
}

/// Runs `ks` through one cursor, a step and a save lookup per query (in both orders),
/// against the plan and, on a uniform grid, against the binary search over the save times
/// the cursor used to do.
fn check_cursor_queries(grid: &TimeGrid, times: &[f32], ks: &[u32]) {
    let (steps, saves) = plan_reference(grid, times);
    let last = steps.len() as u32;
    let uniform = grid.spacing() == Spacing::Uniform;
    let mut cursor = grid.cursor(times).unwrap();
    assert_eq!(cursor.last(), last);
    for (n, &k) in ks.iter().enumerate() {
        let expected_save = saves.get(k as usize).copied().flatten();
        let expected_step = steps.get(k as usize).copied();
        let (save, step) = if n % 2 == 0 {
            let save = cursor.save_at(k);
            (save, cursor.step(k))
        } else {
            let step = cursor.step(k);
            (cursor.save_at(k), step)
        };
        assert_eq!(
            save, expected_save,
            "save at {k} (query {n}) on {grid:?}, {times:?}"
        );
        assert_eq!(
            step.map(|s| (s.k, s.t.to_bits(), s.h.to_bits(), s.sqrt_h.to_bits())),
            expected_step.map(|s| (s.k, s.t.to_bits(), s.h.to_bits(), s.sqrt_h.to_bits())),
            "step {k} (query {n})"
        );
        if uniform && k <= last {
            // The lookup before: the first save time whose index is not below k.
            let i = times.partition_point(|&t| grid.index_of(t).is_none_or(|j| j < k));
            let before = (times.get(i).and_then(|&t| grid.index_of(t)) == Some(k)).then_some(i);
            assert_eq!(save, before, "save at {k}: binary search");
        }
    }
}

proptest! {
    /// Uniform grids: save times at random grid points (sometimes `t0`, sometimes `t1`).
    #[test]
    fn cursors_on_uniform_grids_answer_every_query_order_as_the_plan(
        t0 in -50.0f32..50.0,
        span in 1e-3f32..100.0,
        steps in 1u32..1500,
        picks in prop::collection::vec(0.0f64..=1.0, 0..25),
        interval in 1u32..40,
        jumps in prop::collection::vec(any::<u32>(), 0..60),
    ) {
        let grid = TimeGrid::new(t0, t0 + span, steps).unwrap();
        let mut ks: Vec<u32> = picks.iter().map(|p| (p * steps as f64) as u32).collect();
        ks.sort_unstable();
        ks.dedup();
        let times: Vec<f32> = ks.iter().map(|&k| grid.time(k)).collect();
        prop_assume!(grid.check_save_times(&times).is_ok());
        let last = grid.check_save_times(&times).unwrap();
        check_cursor_queries(&grid, &times, &query_orders(last, interval, &jumps));
    }

    /// The spacings through the save times: the same query orders.
    #[test]
    fn cursors_through_save_times_answer_every_query_order_as_the_plan(
        gaps in prop::collection::vec(1e-3f32..0.7, 1..20),
        steps in 1u32..300,
        h_max in 1e-2f32..0.5,
        interval in 1u32..40,
        jumps in prop::collection::vec(any::<u32>(), 0..60),
    ) {
        let t0 = -1.0f32;
        let times: Vec<f32> = gaps
            .iter()
            .scan(t0, |t, g| {
                *t += g;
                Some(*t)
            })
            .collect();
        let t1 = *times.last().unwrap();
        for grid in [
            TimeGrid::through(t0, t1, steps).unwrap(),
            TimeGrid::with_max_step(t0, t1, h_max).unwrap(),
        ] {
            let last = grid.check_save_times(&times).unwrap();
            check_cursor_queries(&grid, &times, &query_orders(last, interval, &jumps));
        }
    }
}

#[test]
fn bad_grids_and_save_times_are_refused() {
    assert!(TimeGrid::with_max_step(0.0, 1.0, 0.0).is_err());
    assert!(TimeGrid::with_max_step(0.0, 1.0, f32::NAN).is_err());
    assert!(TimeGrid::with_max_step(0.0, 1e30, 1e-30).is_err()); // too many steps
    assert!(TimeGrid::through(1.0, 1.0, 10).is_err());
    assert!(TimeGrid::through(0.0, 1.0, 0).is_err());
    let grid = TimeGrid::through(0.0, 1.0, 10).unwrap();
    assert_eq!(
        grid.check_save_times(&[0.5, 0.5]),
        Err(Error::SaveTime { index: 1 })
    );
    assert_eq!(
        grid.check_save_times(&[0.5, 0.4]),
        Err(Error::SaveTime { index: 1 })
    );
    assert_eq!(
        grid.check_save_times(&[0.5, 1.1]),
        Err(Error::SaveTime { index: 1 })
    );
    assert_eq!(
        grid.check_save_times(&[-0.1]),
        Err(Error::SaveTime { index: 0 })
    );
    assert_eq!(
        grid.check_save_times(&[f32::NAN]),
        Err(Error::SaveTime { index: 0 })
    );
    assert!(grid.plan(&[0.5, 0.2]).is_err());
}

// ------------------------------------------------------- strong order on uneven grids

/// One Brownian path per trajectory sampled exactly on a set of times (the union of every
/// resolution's step times), served as the increments of one resolution's plan.
struct PathOnNodes {
    /// W at every node time of the union, per trajectory.
    w: Vec<BTreeMap<u32, f64>>,
    /// This resolution's node times (bit patterns), step k goes from node k to node k + 1.
    nodes: Vec<u32>,
}

impl NoiseSource for PathOnNodes {
    fn increment<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        _h: f32,
        _with_dz: bool,
    ) -> Result<Increment<C>, Error> {
        let w = &self.w[trajectory];
        let a = w[&self.nodes[step as usize]];
        let b = w[&self.nodes[step as usize + 1]];
        Ok(Increment {
            dw: [(b - a) as f32; C],
            dz: [0.0; C],
        })
    }
}

/// Node times of a plan: every step's start, then the last save time.
fn nodes(grid: &TimeGrid, times: &[f32]) -> Vec<f32> {
    let mut n: Vec<f32> = steps_of(grid, times).iter().map(|s| s.t).collect();
    n.push(*times.last().unwrap());
    n
}

/// Mean over trajectories of the largest error at the save times, for each budget.
fn strong_errors_on_uneven_grids<M>(
    method: M,
    budgets: &[u32],
    trajectories: usize,
) -> Vec<(f64, f64)>
where
    M: Method + Copy,
    Solver<M>: Integrator<f32, Gbm, PathOnNodes, 1>,
{
    let times = [0.13f32, 0.37, 0.52, 0.71, 0.88, 1.0];
    let grids: Vec<TimeGrid> = budgets
        .iter()
        .map(|&n| TimeGrid::through(0.0, 1.0, n).unwrap())
        .collect();
    let mut union: Vec<f32> = grids.iter().flat_map(|g| nodes(g, &times)).collect();
    union.push(0.0);
    union.sort_by(f32::total_cmp);
    union.dedup();
    // W on the union: independent normal increments over consecutive node times.
    let w: Vec<BTreeMap<u32, f64>> = (0..trajectories)
        .map(|m| {
            let mut map = BTreeMap::new();
            let (mut acc, mut prev) = (0.0f64, 0.0f64);
            for (i, &t) in union.iter().enumerate() {
                let bits = splitmix64(splitmix64(m as u64) ^ i as u64) as u32;
                acc += f64::from(normal_from_bits(bits)) * (f64::from(t) - prev).sqrt();
                prev = f64::from(t);
                map.insert(t.to_bits(), acc);
            }
            map
        })
        .collect();
    let mut noise = PathOnNodes { w, nodes: vec![] };
    let mut points = Vec::new();
    for grid in &grids {
        noise.nodes = nodes(grid, &times).iter().map(|t| t.to_bits()).collect();
        let solver = Solver::new(method, *grid);
        let mut total = 0.0f64;
        for m in 0..trajectories {
            let mut out = [[0.0f32]; 6];
            solve::solve(
                &solver,
                &Gbm,
                &noise,
                &SolveRequest::new([0.5], &times).trajectory(m),
                &mut out,
            )
            .unwrap();
            let mut worst = 0.0f64;
            for (t, u) in times.iter().zip(out) {
                let wt = noise.w[m][&t.to_bits()];
                let exact = 0.5 * ((1.01 - 0.87f64 * 0.87 / 2.0) * f64::from(*t) + 0.87 * wt).exp();
                worst = worst.max((f64::from(u[0]) - exact).abs());
            }
            total += worst;
        }
        points.push((1.0 / f64::from(grid.steps()), total / trajectories as f64));
    }
    points
}

fn fitted_order(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (lx, ly): (Vec<f64>, Vec<f64>) = points.iter().map(|&(h, e)| (h.ln(), e.ln())).unzip();
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = lx.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

#[test]
fn strong_orders_hold_on_grids_through_uneven_save_times() {
    let budgets = [20, 40, 80, 160, 320, 640];
    let em = fitted_order(&strong_errors_on_uneven_grids(EulerMaruyama, &budgets, 400));
    eprintln!("fitted strong orders on uneven grids: Euler-Maruyama {em:.3}");
    assert!((em - 0.5).abs() < 0.15, "Euler-Maruyama order {em}");
    let milstein = fitted_order(&strong_errors_on_uneven_grids(Milstein, &budgets, 400));
    eprintln!("Milstein {milstein:.3}");
    assert!((milstein - 1.0).abs() < 0.2, "Milstein order {milstein}");
}
