//! Walking a step plan backwards: [`PlanCursor`] gives every step and save of a
//! [`StepPlan`] with the same bits, in any order, on every grid spacing, and refuses what
//! the plan refuses.

use tinysde::solve::{PlanEvent, PlannedStep, TimeGrid};
use tinysde::Error;

/// Deterministic pseudo-random numbers in [0, 1) (a 64-bit LCG, top bits).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Strictly increasing save times in `(t0, t1]`, some crowded, some on the nominal grid,
/// the last one sometimes `t1` (with `only_grid`, all on the nominal grid).
fn save_times(rng: &mut Lcg, t0: f32, t1: f32, grid_h: f32, only_grid: bool) -> Vec<f32> {
    let n = 1 + (rng.next() * 12.0) as usize;
    let mut times: Vec<f32> = (0..n)
        .map(|_| {
            let r = rng.next();
            if r < 0.3 || only_grid {
                // A nominal grid point.
                let k = ((rng.next() * (t1 - t0) / grid_h) as u32).max(1);
                t0 + k as f32 * grid_h
            } else {
                t0 + (t1 - t0) * rng.next().max(1e-3)
            }
        })
        .filter(|&t| t > t0 && t <= t1)
        .collect();
    if rng.next() < 0.5 {
        times.push(t1);
    }
    times.sort_by(f32::total_cmp);
    times.dedup();
    if rng.next() < 0.2 {
        times.insert(0, t0);
    }
    times
}

fn bits(s: &PlannedStep) -> (u32, u32, u32) {
    (s.k, s.t.to_bits(), s.h.to_bits())
}

/// The cursor's steps and saves, queried backwards and in a scrambled order, equal the
/// forward plan's, bit for bit, for all three spacings; nothing past the last save time.
#[test]
fn cursor_replays_the_plan_in_any_order() {
    let mut rng = Lcg(11);
    let mut checked = 0;
    for case in 0..300 {
        let (t0, t1) = if case % 3 == 0 {
            (0.0, 1.0)
        } else {
            (-2.5, 7.0)
        };
        let grid = match case % 4 {
            0 => TimeGrid::new(t0, t1, 50).unwrap(),
            1 => TimeGrid::through(t0, t1, 37).unwrap(),
            2 => TimeGrid::with_max_step(t0, t1, (t1 - t0) / 23.0).unwrap(),
            _ => TimeGrid::with_max_step(t0, t1, 0.7 * (t1 - t0)).unwrap(),
        };
        let times = save_times(&mut rng, t0, t1, grid.h(), case % 8 == 0);
        let Ok(plan) = grid.plan(&times) else {
            // Off a uniform grid: the cursor refuses the same times.
            assert!(matches!(grid.cursor(&times), Err(Error::SaveTime { .. })));
            continue;
        };
        let mut steps = Vec::new();
        let mut saves = Vec::new();
        for event in plan {
            match event {
                PlanEvent::Step(s) => steps.push(s),
                PlanEvent::Save(i) => saves.push((i, steps.len() as u32)),
            }
        }
        let mut cursor = grid.cursor(&times).unwrap();
        let last = steps.len() as u32;
        assert_eq!(cursor.last(), last);
        assert_eq!(grid.check_save_times(&times).unwrap(), last);
        for s in steps.iter().rev() {
            assert_eq!(
                cursor.step(s.k).map(|c| bits(&c)),
                Some(bits(s)),
                "{times:?}"
            );
        }
        assert_eq!(cursor.step(last), None);
        assert_eq!(cursor.step(u32::MAX), None);
        for k in (0..=last + 1).rev() {
            let expected = saves.iter().find(|&&(_, at)| at == k).map(|&(i, _)| i);
            assert_eq!(cursor.save_at(k), expected, "save at {k}: {times:?}");
        }
        // Scrambled order: backwards-forwards jumps and repeats.
        for _ in 0..2 * steps.len() {
            let j = (rng.next() * steps.len() as f32) as usize;
            let s = steps[j.min(steps.len() - 1)];
            assert_eq!(cursor.step(s.k).map(|c| bits(&c)), Some(bits(&s)));
        }
        checked += 1;
    }
    assert!(checked > 230, "only {checked} cases had valid save times");
}

/// Bad save times are the plan's errors; an empty list has no steps.
#[test]
fn cursor_refuses_bad_save_times() {
    let grid = TimeGrid::through(0.0, 1.0, 10).unwrap();
    let e = grid.cursor(&[0.5, 0.4]);
    assert!(matches!(e, Err(Error::SaveTime { index: 1 })), "{e:?}");
    let e = grid.cursor(&[0.5, f32::NAN]);
    assert!(matches!(e, Err(Error::SaveTime { index: 1 })), "{e:?}");
    let e = grid.cursor(&[1.5]);
    assert!(matches!(e, Err(Error::SaveTime { index: 0 })), "{e:?}");
    let mut empty = grid.cursor(&[]).unwrap();
    assert_eq!(empty.last(), 0);
    assert_eq!(empty.step(0), None);
    assert_eq!(empty.save_at(0), None);
}
