//! The examples' code, run with small settings: training lowers the loss, the output
//! files appear complete (valid PNGs of the right size, weights that load back bit for bit),
//! corrupted or mismatched weights are refused, and malformed CSV files are refused with
//! a message naming the file and the problem, leaving no output behind.

// Each example includes `examples/common` itself, so including three examples loads it
// three times (as separate modules); that is intended.
#![allow(clippy::duplicate_mod)]

#[allow(dead_code)]
#[path = "../examples/fit_csv.rs"]
mod fit_csv;
#[allow(dead_code)]
#[path = "../examples/fit_exp.rs"]
mod fit_exp;
#[allow(dead_code)]
#[path = "../examples/spiral.rs"]
mod spiral;

use std::path::{Path, PathBuf};

use fit_exp::common::{csv, fit, output::Outputs, plot};
use tinysde::nn::Parameters;
use tinysde::train::GrowingWindow;
use tinysde::weights;
use tinysde::{Error, WeightsError};

/// A fresh, empty temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tinysde-examples-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names of the files in `dir` (empty if it does not exist).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Decodes a PNG completely; returns its size and the fraction of pixels that are not white.
fn decode_png(path: &Path) -> (u32, u32, f64) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let px = &buf[..info.buffer_size()];
    let ink = px.chunks(3).filter(|p| p != &[255, 255, 255]).count();
    (info.width, info.height, ink as f64 / (px.len() / 3) as f64)
}

fn param_bits<M: Parameters>(m: &M) -> Vec<u32> {
    let mut p = vec![0.0; M::PARAMS];
    m.read_params(&mut p).unwrap();
    p.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn seed_data_is_exp_plus_uniform_noise() {
    let (times, data) = fit_exp::common::data::seed_task(2024);
    assert_eq!(times, [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]);
    for (t, d) in times.iter().zip(&data) {
        let noise = d[0] - t.exp();
        assert!((-1e-5..2.0 + 1e-5).contains(&noise), "noise {noise} at {t}");
    }
    // Fixed seed: the same data every time; another seed gives other noise.
    assert_eq!(
        fit_exp::common::data::seed_task(2024),
        (times.clone(), data.clone())
    );
    assert_ne!(fit_exp::common::data::seed_task(2025).1, data);
}

#[test]
fn fit_exp_trains_and_writes_valid_outputs() {
    let dir = temp_dir("fit_exp");
    let settings = fit_exp::Settings {
        plain_iterations: 12,
        window: GrowingWindow {
            start: 2,
            add: 2,
            iters_per_stage: 3,
        },
        lr: 0.05,
        trajectories: 4,
        steps_per_unit: 2,
        eval_trajectories: 32,
        ..fit_exp::Settings::full()
    };
    let s = fit_exp::run(&settings, &dir, false).unwrap();
    assert_eq!(s.plain.losses.len(), 12);
    assert_eq!(s.window.losses.len(), 4 * 3); // windows 2, 4, 6, 7
    assert_eq!(s.window.stage_starts(), [3, 6, 9]);
    assert_eq!(s.window.windows, [2, 2, 2, 4, 4, 4, 6, 6, 6, 7, 7, 7]);
    // Plain training improves on the initial model (scored on a path not used in training).
    assert!(
        s.plain_score < 0.8 * s.initial_score,
        "{} vs {}",
        s.plain_score,
        s.initial_score
    );
    assert!(s.window_score.is_finite());
    // Plain training: the loss of the last iterations is below that of the first ones.
    let first: f32 = s.plain.losses[..3].iter().sum();
    let last: f32 = s.plain.losses[9..].iter().sum();
    assert!(last < first, "{first} -> {last}");

    assert_eq!(
        listing(&dir),
        ["fit_exp.weights", "fit_exp_fit.png", "fit_exp_loss.png"]
    );
    let (w, h, ink) = decode_png(&dir.join("fit_exp_fit.png"));
    assert_eq!((w, h), (900, 560));
    assert!(ink > 0.02, "fit plot nearly blank ({ink})");
    let (w, h, ink) = decode_png(&dir.join("fit_exp_loss.png"));
    assert_eq!((w, h), (900, 480));
    assert!(ink > 0.02, "loss plot nearly blank ({ink})");

    // The weights file holds the trained model, bit for bit.
    let bytes = std::fs::read(dir.join("fit_exp.weights")).unwrap();
    let mut loaded = fit::Model::<1>::default();
    weights::read_into(&mut loaded, &bytes).unwrap();
    assert_eq!(param_bits(&loaded), param_bits(&s.model));
    // A corrupted file is refused, and the model keeps its parameters.
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    let mut m = loaded;
    assert_eq!(
        weights::read_into(&mut m, &bad),
        Err(Error::Weights(WeightsError::Checksum))
    );
    assert_eq!(param_bits(&m), param_bits(&loaded));
    // Another model (the spiral's) is refused.
    let mut other = spiral::SpiralModel::default();
    assert_eq!(
        weights::read_into(&mut other, &bytes),
        Err(Error::Weights(WeightsError::ShapeMismatch))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn spiral_trains_on_moments() {
    let dir = temp_dir("spiral");
    let settings = spiral::Settings {
        data_trajectories: 400,
        data_steps_per_save: 4,
        phases: vec![spiral::common::fit::Phase {
            lr: 0.025,
            trajectories: 2,
            iterations: 8,
        }],
        eval_trajectories: 32,
        ..spiral::Settings::tutorial()
    };
    let s = spiral::run(&settings, &dir, false).unwrap();
    assert_eq!(s.times.len(), 30);
    assert_eq!(s.history.losses.len(), 8);
    assert!(
        s.final_loss < 0.5 * s.initial_loss,
        "{} -> {}",
        s.initial_loss,
        s.final_loss
    );
    assert_eq!(listing(&dir), ["spiral.png", "spiral.weights"]);
    let (w, h, ink) = decode_png(&dir.join("spiral.png"));
    assert_eq!((w, h), (1100, 820));
    assert!(ink > 0.02);
    let bytes = std::fs::read(dir.join("spiral.weights")).unwrap();
    let mut m = spiral::SpiralModel::default();
    weights::read_into(&mut m, &bytes).unwrap();
    // Writing the loaded model gives the same bytes.
    assert_eq!(encode(&m), bytes);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `weights::write` into a vector (these tests do not need the crate's `std` feature).
fn encode<M: weights::Describe>(m: &M) -> Vec<u8> {
    let mut v = vec![0; weights::encoded_len::<M>()];
    let n = weights::write(m, &mut v).unwrap();
    v.truncate(n);
    v
}

#[test]
fn the_true_spiral_data_spirals() {
    // The data generator's mean starts at u0 and turns counter-clockwise: u2 rises first.
    let fit_exp::common::data::SpiralData { times, mean, var } =
        fit_exp::common::data::spiral(30, 2000, 4, 1).unwrap();
    assert_eq!(times.len(), 30);
    assert_eq!(times[0], 0.0);
    assert_eq!(times[29], 1.0);
    assert_eq!(mean[0], [2.0, 0.0]);
    assert_eq!(var[0], [0.0, 0.0]);
    assert!(mean[3][1] > 0.5, "{:?}", mean[3]);
    // Multiplicative noise makes the spread grow from zero.
    assert!(var[29][0] > 0.01 && var[29][1] > 0.01, "{:?}", var[29]);
}

#[test]
fn csv_accepts_headers_comments_quotes_and_blank_lines() {
    let t = csv::parse(
        "a.csv",
        "# comment\n\n time , \"level\"\n0, 1.5\n0.5,2\n\n2,-3e-1\n",
    )
    .unwrap();
    assert_eq!(t.names, ["time", "level"]);
    assert_eq!(t.times, [0.0, 0.5, 2.0]);
    assert_eq!(t.rows, [vec![1.5], vec![2.0], vec![-0.3]]);
    let t = csv::parse("b.csv", "1,2,3\n2,4,5\n").unwrap();
    assert_eq!(t.names, ["t", "x1", "x2"]);
    assert_eq!(t.value_columns(), 2);
}

#[test]
fn csv_errors_name_the_file_line_and_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "t,x\n0,1\n1,2,3\n",
            "bad.csv:3: expected 2 columns, found 3",
        ),
        (
            "t,x\n0,1\n1\n",
            "bad.csv:3: need a time column and at least one value column",
        ),
        (
            "t,x\n0,1\n1,abc\n",
            "bad.csv:3: column 2 (\"x\"): \"abc\" is not a number",
        ),
        (
            "0,1\n1,abc\n",
            "bad.csv:2: column 2: \"abc\" is not a number",
        ),
        (
            "t,x\n0,1\n1,NaN\n",
            "bad.csv:3: column 2 (\"x\"): \"NaN\" is not a finite number",
        ),
        ("t,x\n0,1\n1,inf\n", "is not a finite number"),
        ("t,x\n0,1\n1,1e99\n", "\"1e99\" is not a finite number"),
        ("t,x\n0,1\n1,\n", "bad.csv:3: column 2 (\"x\") is empty"),
        (
            "t,x\n0,1\n2,2\n2,3\n",
            "bad.csv:4: time 2 is not after the previous time 2",
        ),
        (
            "t,x\n0,1\n2,2\n1,3\n",
            "bad.csv:4: time 1 is not after the previous time 2",
        ),
        ("t,x\n0,1\n", "bad.csv: need at least 2 data rows, found 1"),
        ("", "bad.csv: need at least 2 data rows, found 0"),
        ("time\n0\n", "bad.csv:1: need a time column"),
    ];
    for (text, want) in cases {
        let err = csv::parse("bad.csv", text).unwrap_err();
        assert!(err.contains(want), "{text:?}: got {err:?}, want {want:?}");
        assert!(!err.contains('\n'), "multi-line message {err:?}");
    }
}

#[test]
fn fit_csv_refuses_bad_files_and_writes_nothing() {
    let dir = temp_dir("fit_csv_bad");
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("missing.csv", None, "missing.csv: cannot read"),
        (
            "ragged.csv",
            Some("t,x\n0,1\n1,2,3\n"),
            "ragged.csv:3: expected 2 columns, found 3",
        ),
        (
            "text.csv",
            Some("t,x\n0,1\n1,high\n"),
            "text.csv:3: column 2 (\"x\"): \"high\" is not a number",
        ),
        (
            "order.csv",
            Some("t,x\n0,1\n1,2\n0.5,3\n"),
            "order.csv:4: time 0.5 is not after the previous time 1",
        ),
        (
            "nan.csv",
            Some("t,x\n0,1\n1,nan\n"),
            "nan.csv:3: column 2 (\"x\"): \"nan\" is not a finite number",
        ),
        (
            "wide.csv",
            Some("t,a,b,c\n0,1,2,3\n1,2,3,4\n"),
            "wide.csv: has 3 value columns; fit_csv fits 1 or 2",
        ),
    ];
    let settings = fit_csv::Settings {
        iterations: 2,
        trajectories: 2,
        eval_trajectories: 4,
        ..fit_csv::Settings::default()
    };
    for (name, text, want) in cases {
        let path = dir.join(name);
        if let Some(t) = text {
            std::fs::write(&path, t).unwrap();
        }
        let out = dir.join(format!("out-{name}"));
        let err = fit_csv::run(&path, &settings, &out, false).unwrap_err();
        assert!(err.contains(want), "{name}: got {err:?}");
        assert!(
            err.contains(&path.display().to_string()),
            "{name}: {err:?} does not name the file"
        );
        assert!(!out.exists(), "{name}: output directory created");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fit_csv_fits_unequally_spaced_data() {
    let dir = temp_dir("fit_csv_ok");
    // Unequal spacing on a 0.05 grid, in large units: the scaling has to handle both.
    let text = "minutes,load\n0,100\n5,140\n15,190\n20,260\n35,400\n40,450\n";
    let path = dir.join("load.csv");
    std::fs::write(&path, text).unwrap();
    let out = dir.join("out");
    let settings = fit_csv::Settings {
        iterations: 16,
        trajectories: 4,
        eval_trajectories: 32,
        lr: 0.02,
        ..fit_csv::Settings::default()
    };
    let s = fit_csv::run(&path, &settings, &out, false).unwrap();
    assert_eq!((s.dims, s.rows), (1, 6));
    assert_eq!(s.max_shift, 0.0); // every time is a grid point
    assert_eq!(s.steps % 8, 0); // times are multiples of 5/40 of the span
    assert!(
        s.score < s.initial_score,
        "{} -> {}",
        s.initial_score,
        s.score
    );
    assert_eq!(
        listing(&out),
        [
            "fit_csv.txt",
            "fit_csv.weights",
            "fit_csv_fit.png",
            "fit_csv_loss.png"
        ]
    );
    assert_eq!(decode_png(&out.join("fit_csv_fit.png")).0, 700);
    assert_eq!(decode_png(&out.join("fit_csv_loss.png")).0, 900);
    let bytes = std::fs::read(out.join("fit_csv.weights")).unwrap();
    let mut m = fit::Model::<1>::default();
    weights::read_into(&mut m, &bytes).unwrap();
    assert_eq!(encode(&m), bytes);
    let mut m2 = fit::Model::<2>::default();
    assert_eq!(
        weights::read_into(&mut m2, &bytes),
        Err(Error::Weights(WeightsError::ShapeMismatch))
    );
    let txt = std::fs::read_to_string(out.join("fit_csv.txt")).unwrap();
    assert!(txt.contains("time: tau = (minutes - 0) / 40"), "{txt}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn grids_pass_through_the_save_times() {
    // Exact: times on multiples of 0.125 need a multiple of 8 steps.
    let times = [0.0, 0.125, 0.5, 1.0];
    let (grid, on, shift) = fit::grid_through(&times, 5, 100).unwrap();
    assert_eq!(grid.steps(), 8);
    assert_eq!(on, times);
    assert_eq!(shift, 0.0);
    assert!(grid.check_save_times(&on).is_ok());
    // No exact grid within the limit: times are moved to the nearest point of the finest grid.
    let times = [0.0, 0.123_456_7, 0.654_321, 1.0];
    let (grid, on, shift) = fit::grid_through(&times, 5, 50).unwrap();
    assert_eq!(grid.steps(), 50);
    assert!(grid.check_save_times(&on).is_ok());
    assert!(shift > 0.0 && shift <= 0.5 * grid.h() + 1e-6, "{shift}");
    for (a, b) in times.iter().zip(&on) {
        assert!((a - b).abs() <= shift);
    }
    // Times closer than the finest allowed step are refused, not merged.
    assert!(fit::grid_through(&[0.0, 0.001, 1.0], 5, 100).is_err());
    assert!(fit::grid_through(&[0.0, 0.004, 0.0051, 1.0], 5, 400).is_err());
}

#[test]
fn outputs_appear_only_on_commit() {
    let dir = temp_dir("outputs");
    {
        let mut o = Outputs::new(&dir).unwrap();
        o.add("a.txt", b"first").unwrap();
        o.add("b.txt", b"second").unwrap();
        assert_eq!(listing(&dir), [".a.txt.partial", ".b.txt.partial"]);
        // Dropped without commit (as when a later step fails): nothing is left.
    }
    assert!(listing(&dir).is_empty());
    let mut o = Outputs::new(&dir).unwrap();
    o.add("a.txt", b"first").unwrap();
    let files = o.commit().unwrap();
    assert_eq!(files, [dir.join("a.txt")]);
    assert_eq!(listing(&dir), ["a.txt"]);
    assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"first");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plots_render_text_and_lines() {
    let chart = plot::Chart {
        title: "t".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        log_y: true,
        legend: plot::Legend::Auto,
        items: vec![plot::Item::line(
            vec![(0.0, 1.0), (1.0, 100.0)],
            plot::BLUE,
            2,
            "line",
        )],
    };
    let png = plot::render_png(&[chart.clone(), chart], 2, (400, 200)).unwrap();
    let dir = temp_dir("plot");
    let path = dir.join("p.png");
    std::fs::write(&path, png).unwrap();
    let (w, h, ink) = decode_png(&path);
    assert_eq!((w, h), (400, 200));
    assert!(ink > 0.01 && ink < 0.5, "{ink}");
    std::fs::remove_dir_all(&dir).unwrap();
}
