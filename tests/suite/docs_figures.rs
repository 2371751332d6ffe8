//! The documentation cannot go stale unseen: its deterministic figures and references are
//! checked against the code and the repository.
//!
//! - every path to a file of this repository named in the docs and the code's comments exists;
//! - every relative link of the README and the packaged docs resolves inside the package;
//! - docs/weights-format.md's sizes of the seed model's file are the library's;
//! - the firmware records and log lines quoted in boards/ are the host's (the bit patterns,
//!   and the decimals beside them to the digits shown);
//! - the error-code lists name every stage of `boards/app`'s `Stage::code`;
//! - `fit_exp --help` names every file `fit_exp` writes;
//! - the soft-float training figure of boards/HARDWARE.md is boards/README.md's measurement.
//!
//! Not checked here: the QEMU instruction counts and sizes in boards/ and the README are
//! printed by `boards/ci.sh`, which does not compare them with the text yet; timings depend
//! on the machine and name their command instead.

use std::path::{Component, Path, PathBuf};

use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, Parameters};
use tinysde::sde::NeuralSde;
use tinysde::weights;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Prose with line breaks, comment markers and runs of spaces folded into single spaces.
pub(crate) fn folded(text: &str) -> String {
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            t.strip_prefix("//!")
                .or_else(|| t.strip_prefix("///"))
                .or_else(|| t.strip_prefix("//"))
                .or_else(|| t.strip_prefix("# "))
                .unwrap_or(t)
        })
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Files under `dir` (relative to the root) whose names end in one of `exts`, recursively,
/// skipping build outputs.
fn walk(dir: &str, exts: &[&str], out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
        return;
    };
    let mut entries: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rel = format!("{dir}/{name}");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                walk(&rel, exts, out);
            }
        } else if exts.iter().any(|e| name.ends_with(e)) {
            out.push(rel);
        }
    }
}

/// The documentation and the sources whose comments name files.
fn checked_files() -> Vec<String> {
    let mut files: Vec<String> = ["README.md", "CHANGELOG.md", "Cargo.toml", ".ci/run"]
        .map(String::from)
        .to_vec();
    for dir in ["docs", "src", "tests", "examples", "benches", "boards"] {
        walk(dir, &[".md", ".rs", ".sh"], &mut files);
    }
    files
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

/// The paths into the repository's top-level folders that `text` names.
fn named_paths(text: &str) -> Vec<String> {
    const TOPS: [&str; 6] = [
        "tests/",
        "examples/",
        "boards/",
        "docs/",
        "src/",
        "benches/",
    ];
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let starts = (i == 0 || !is_path_char(chars[i - 1].1))
            && c.is_ascii_lowercase()
            && TOPS.iter().any(|t| text[at..].starts_with(t));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && is_path_char(chars[j].1) {
            j += 1;
        }
        let end = chars.get(j).map_or(text.len(), |&(e, _)| e);
        let token = text[at..end].trim_end_matches(['.', '/', '-']);
        // Not a path: a placeholder, a glob, a build output, a URL's tail.
        let next = text[end..].chars().next();
        let skip = token.split('/').any(|p| p == "target")
            || matches!(next, Some('<' | '*' | '{' | '$'))
            || (i > 0 && matches!(chars[i - 1].1, ':' | '$' | '{'));
        if !skip {
            out.push(token.to_string());
        }
        i = j;
    }
    out
}

/// The folder of the Cargo package that holds `file` (relative to the root).
fn package_dir(file: &str) -> PathBuf {
    let mut dir = root().join(file);
    while dir.pop() {
        if dir.join("Cargo.toml").exists() {
            return dir;
        }
    }
    root()
}

#[test]
fn every_path_the_docs_name_exists() {
    let mut missing = Vec::new();
    for file in checked_files() {
        let text = read(&file);
        for path in named_paths(&text) {
            let here = root().join(&file);
            let candidates = [
                root().join(&path),
                package_dir(&file).join(&path),
                here.parent().unwrap().join(&path),
            ];
            if !candidates.iter().any(|c| c.exists()) {
                missing.push(format!("{file}: {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths named in the docs that do not exist:\n{}",
        missing.join("\n")
    );
}

/// The package's include patterns (Cargo.toml's `include`), as (prefix, suffix, recursive).
fn package_patterns() -> Vec<(String, String, bool)> {
    let manifest = read("Cargo.toml");
    let start = manifest
        .find("include = [")
        .expect("Cargo.toml has an include list");
    let list = &manifest[start..start + manifest[start..].find(']').unwrap()];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(|p| {
            let p = p.trim_start_matches('/');
            match (p.find('*'), p.rfind('*')) {
                (Some(a), Some(b)) => {
                    (p[..a].to_string(), p[b + 1..].to_string(), p.contains("**"))
                }
                _ => (p.to_string(), String::new(), false),
            }
        })
        .collect()
}

fn packaged(path: &str, patterns: &[(String, String, bool)]) -> bool {
    patterns.iter().any(|(prefix, suffix, recursive)| {
        if suffix.is_empty() && !prefix.ends_with('/') {
            return path == prefix;
        }
        path.len() >= prefix.len() + suffix.len()
            && path.starts_with(prefix.as_str())
            && path.ends_with(suffix.as_str())
            && (*recursive || !path[prefix.len()..].contains('/'))
    })
}

/// `base/rel` with `.` and `..` resolved, relative to the root.
fn resolve(base: &Path, rel: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

#[test]
fn the_readmes_links_resolve_inside_the_package() {
    let patterns = package_patterns();
    let mut docs = vec!["README.md".to_string()];
    walk("docs", &[".md"], &mut docs);
    walk("examples/data", &[".md"], &mut docs);
    let mut broken = Vec::new();
    for doc in docs.iter().filter(|d| packaged(d, &patterns)) {
        let text = read(doc);
        for link in text.split("](").skip(1) {
            let target = &link[..link.find(')').unwrap_or(link.len())];
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with('#')
            {
                continue;
            }
            let file = target.split('#').next().unwrap();
            let path = resolve(Path::new(doc).parent().unwrap(), file);
            if !root().join(&path).exists() || !packaged(&path, &patterns) {
                broken.push(format!("{doc}: {target} ({path} is not in the package)"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
type SeedModel = NeuralSde<Drift, Diffusion>;

#[test]
fn the_weights_format_states_the_seed_models_sizes() {
    let l = weights::description_len::<SeedModel>();
    let n = SeedModel::PARAMS;
    let total = weights::encoded_len::<SeedModel>();
    let mut blob = vec![0u8; total];
    weights::write(&SeedModel::default(), &mut blob).unwrap();
    let blob = weights::inspect(&blob).unwrap();
    let description = blob.description_str().unwrap();
    let doc = folded(&read("docs/weights-format.md"));
    assert!(
        doc.contains(description),
        "docs/weights-format.md does not show the seed model's description {description}"
    );
    let sentence = format!(
        "(`L` = {l} bytes) and has `N` = {n} parameters, so its file is 22 + {l} + {} = {total} bytes",
        4 * n
    );
    assert!(
        doc.contains(&sentence),
        "docs/weights-format.md should say: {sentence}"
    );
}

/// The `f32` whose bit pattern is the hex word `h`.
fn decode(h: &str) -> f64 {
    f64::from(f32::from_bits(u32::from_str_radix(h, 16).unwrap()))
}

/// Whether the decimal `shown` is `value` rounded to the digits shown.
fn shows(shown: &str, value: f64) -> bool {
    let shown = shown.trim_end_matches([',', ':']);
    let Ok(x) = shown.parse::<f64>() else {
        return false;
    };
    let decimals = shown.split('.').nth(1).map_or(0, str::len) as i32;
    (x - value).abs() <= 0.5 * 10f64.powi(-decimals) * (1.0 + 1e-9)
}

/// `key` followed by a number in `words`: the number.
fn after<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    let i = words.iter().position(|w| *w == key)?;
    let next = words.get(i + 1)?;
    Some(if *next == "=" {
        words.get(i + 2)?
    } else {
        next
    })
}

#[test]
fn the_firmware_records_quoted_in_boards_are_the_hosts() {
    let expected = crate::firmware_parity::expected_records();
    let record = |kind: &str, i: &str| -> Vec<String> {
        expected
            .lines()
            .find(|l| l.starts_with(&format!("{kind} {i} ")))
            .unwrap_or_else(|| panic!("the host prints no {kind} {i} record"))
            .split(' ')
            .map(String::from)
            .collect()
    };
    let mut checked = 0;
    for file in ["boards/README.md", "boards/HARDWARE.md"] {
        // Code blocks introduced by a paragraph about micromath hold that build's values,
        // which differ within a stated tolerance (boards/ci.sh checks those).
        let (mut in_block, mut skip, mut paragraph) = (false, false, String::new());
        let mut paragraph_ended = false;
        for line in read(file).lines() {
            if line.starts_with("```") {
                in_block = !in_block;
                skip = in_block && paragraph.contains("micromath");
                continue;
            }
            if !in_block {
                if line.trim().is_empty() {
                    paragraph_ended = true;
                } else {
                    if paragraph_ended {
                        paragraph.clear();
                        paragraph_ended = false;
                    }
                    paragraph.push_str(line);
                }
                continue;
            }
            if skip {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(&first) = words.first() else {
                continue;
            };
            // The QEMU records: bit patterns, then a decimal reading of them.
            if matches!(
                first,
                "CONFIG" | "FORECAST" | "ADAPTIVE" | "ADAPTIVE_STEPS" | "TRAIN"
            ) && !line.contains("...")
            {
                let (fields, note) = line.split_once("  ").unwrap_or((line, ""));
                assert!(
                    expected.lines().any(|l| l == fields.trim_end()),
                    "{file}: `{fields}` is not a record the host prints:\n{expected}"
                );
                let f: Vec<&str> = fields.split(' ').collect();
                let note: Vec<&str> = note.split_whitespace().collect();
                let pairs: &[(&str, usize)] = match first {
                    "FORECAST" => &[("t", 2), ("mean", 3), ("std", 4)],
                    "ADAPTIVE" => &[("t", 2), ("mean", 3), ("variance", 4)],
                    "TRAIN" => &[("loss", 2)],
                    _ => &[],
                };
                for &(key, field) in pairs {
                    let shown = after(&note, key).unwrap_or_else(|| panic!("{file}: {line}"));
                    assert!(
                        shows(shown, decode(f[field])),
                        "{file}: {line}\n{key} {shown} is not {} ({})",
                        decode(f[field]),
                        f[field]
                    );
                }
                checked += 1;
            }
            // The defmt log of the boards: decimals of the same records.
            if first == "INFO" && words.len() > 2 {
                let Some((kind, rest)) = words[1].split_once('[') else {
                    continue;
                };
                let i = rest.trim_end_matches(']');
                // `forecast[0+1]` and the like are the streaming log's format, written as a
                // template, not one of these records.
                if i.is_empty() || !i.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let (kind, pairs): (&str, &[(&str, usize)]) = match kind {
                    "forecast" => ("FORECAST", &[("mean", 3), ("std", 4)]),
                    "adaptive" => ("ADAPTIVE", &[("mean", 3), ("variance", 4)]),
                    "train" => ("TRAIN", &[("loss", 2)]),
                    _ => continue,
                };
                let r = record(kind, i);
                for &(key, field) in pairs {
                    let shown = after(&words, key).unwrap_or_else(|| panic!("{file}: {line}"));
                    assert!(
                        shows(shown, decode(&r[field])),
                        "{file}: {line}\n{key} {shown} is not {} ({})",
                        decode(&r[field]),
                        r[field]
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} records found in boards/");
}

#[test]
fn the_error_code_lists_name_every_stage() {
    let report = read("boards/app/src/report.rs");
    let mut codes = Vec::new();
    let mut names = Vec::new();
    for line in report.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("Stage::") else {
            continue;
        };
        let Some((stage, value)) = rest.split_once(" => ") else {
            continue;
        };
        let value = value.trim_end_matches(',');
        if let Some(name) = value.strip_prefix('"') {
            names.push((stage.to_string(), name.trim_end_matches('"').to_string()));
        } else if let Ok(code) = value.parse::<u8>() {
            codes.push((stage.to_string(), code));
        }
    }
    let expected: Vec<String> = codes
        .iter()
        .map(|(stage, code)| {
            let name = &names.iter().find(|(s, _)| s == stage).unwrap().1;
            format!("{code} {name}")
        })
        .collect();
    assert!(expected.len() >= 5, "{expected:?}");
    let mut lists = 0;
    for file in [
        "boards/README.md",
        "boards/HARDWARE.md",
        "boards/app/src/lib.rs",
        "boards/qemu/src/main.rs",
        "boards/nrf52840-dk/src/main.rs",
        "boards/rpi-pico/src/main.rs",
    ] {
        let text = folded(&read(file));
        for (at, _) in text.match_indices(&expected[0]) {
            let list = &text[at..at + text[at..].find(')').unwrap_or(text.len() - at)];
            for item in &expected {
                assert!(
                    list.contains(item.as_str()),
                    "{file}: the error codes ({list}) miss {item}"
                );
            }
            lists += 1;
        }
    }
    assert!(lists >= 3, "only {lists} lists of error codes found");
}

#[test]
fn fit_exps_help_names_every_file_it_writes() {
    let source = read("examples/fit_exp.rs");
    let start = source
        .find("after_help = \"")
        .expect("fit_exp has an after_help")
        + 14;
    let help = &source[start..start + source[start..].find("\"\n").unwrap()];
    let readme = folded(&read("README.md"));
    let mut files: Vec<&str> = source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| w.starts_with("fit_exp") && (w.ends_with(".png") || w.ends_with(".weights")))
        .collect();
    files.sort();
    files.dedup();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        assert!(
            help.contains(file),
            "`fit_exp --help` does not name {file}: {help}"
        );
        assert!(readme.contains(file), "README.md does not name {file}");
    }
}

#[test]
fn the_soft_float_training_figure_is_the_measured_one() {
    // boards/README.md's table row, measured by boards/ci.sh: M0, M4F, M33.
    let boards = read("boards/README.md");
    let row = boards
        .lines()
        .find(|l| l.starts_with("| one training iteration"))
        .expect("boards/README.md has the training row");
    let m0 = row.split('|').nth(2).unwrap().trim();
    let hardware = folded(&read("boards/HARDWARE.md"));
    let said = format!("an iteration is {m0} instructions");
    assert!(
        hardware.contains(&said),
        "boards/HARDWARE.md should say `{said}` (boards/README.md's measurement)"
    );
}

#[test]
fn rustdoc_states_no_timings() {
    // Benchmark figures go stale unseen in API docs: they belong to the README's benchmark
    // section, which names the command and the machine.
    let mut files = Vec::new();
    walk("src", &[".rs"], &mut files);
    let mut found = Vec::new();
    for file in files {
        for (n, line) in read(&file).lines().enumerate() {
            let t = line.trim_start();
            if !(t.starts_with("///") || t.starts_with("//!")) {
                continue;
            }
            let words: Vec<&str> = t.split_whitespace().collect();
            for pair in words.windows(2) {
                let unit = pair[1].trim_end_matches(|c: char| !c.is_alphanumeric());
                let number = pair[0].trim_start_matches(['(', '~']);
                if matches!(unit, "ns" | "µs" | "us" | "ms")
                    && number.chars().next().is_some_and(|c| c.is_ascii_digit())
                {
                    found.push(format!("{file}:{}: {t}", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "timings in rustdoc:\n{}",
        found.join("\n")
    );
}

/// The README says how long its quick tour is (lines of code without blanks, comments and
/// hidden `#` lines): the count of the block as it stands.
#[test]
fn the_readmes_tour_length_is_the_one_it_states() {
    let readme = read("README.md");
    let tour = readme
        .split_once("## A quick tour")
        .and_then(|(_, rest)| rest.split_once("```rust\n"))
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(block, _)| block)
        .expect("the README has a quick tour block");
    let lines = tour
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
        .count();
    let stated = format!("it is {lines} lines of code");
    assert!(
        folded(&readme).contains(&stated),
        "the tour has {lines} lines of code; the README should say {stated:?}"
    );
}

/// The numbers written in `text`, thousands separators (`,` or a space before three digits)
/// joined: `"1 032 + 1 748 = 2 780"` gives 1032, 1748, 2780; `"**3.11 M** (75.5 M)"` gives
/// 3.11, 75.5.
fn numbers_in(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let three_digits_follow = chars.len() >= i + 4
            && chars[i + 1..i + 4].iter().all(char::is_ascii_digit)
            && chars.get(i + 4).is_none_or(|c| !c.is_ascii_digit());
        if c.is_ascii_digit() || (c == '.' && !current.is_empty()) {
            current.push(c);
        } else if (c == ',' || c == ' ') && !current.is_empty() && three_digits_follow {
            // a thousands separator: the group goes on
        } else if !current.is_empty() {
            out.push(
                std::mem::take(&mut current)
                    .trim_end_matches('.')
                    .to_string(),
            );
        }
        i += 1;
    }
    if !current.is_empty() {
        out.push(current.trim_end_matches('.').to_string());
    }
    out
}

/// The cells of the table row of `text` that starts with `prefix`.
fn row<'a>(text: &'a str, prefix: &str, file: &str) -> Vec<&'a str> {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("{file}: no table row starting with {prefix:?}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

/// The README's firmware table restates boards/README.md's "Numbers" table (which
/// boards/ci.sh and boards/measure-m4.sh produce): every figure is the same number, so the
/// two cannot drift apart. Training RAM + stack is compared with the sentence of
/// boards/README.md that states it per core.
#[test]
fn the_readmes_firmware_table_is_the_boards_one() {
    let (readme, boards) = (read("README.md"), read("boards/README.md"));
    let training_ram = folded(&boards);
    let rows = [
        (
            "| Cortex-M0, soft float (`microbit`) |",
            "| Cortex-M0, soft float (`microbit`) |",
            Some("M0"),
        ),
        (
            "| Cortex-M0, `micromath` |",
            "| Cortex-M0, micromath |",
            None,
        ),
        (
            "| Cortex-M4F (`mps2-an386`) |",
            "| Cortex-M4F (`mps2-an386`) |",
            Some("M4F"),
        ),
        (
            "| Cortex-M33 (`mps2-an505`) |",
            "| Cortex-M33 (`mps2-an505`) |",
            Some("M33"),
        ),
    ];
    for (ours, theirs, core) in rows {
        let (a, b) = (
            row(&readme, ours, "README.md"),
            row(&boards, theirs, "boards/README.md"),
        );
        let last = |cell: &str| numbers_in(cell).last().cloned();
        let first = |cell: &str| numbers_in(cell).first().cloned();
        // (what, README cell, boards cell): flash, RAM + stack (the sum), EM step, training
        // iteration (millions; the README adds forward mode's figure in brackets), adaptive
        // forecast (millions and per accepted step).
        assert_eq!(first(a[1]), first(b[1]), "{ours} inference flash");
        assert_eq!(last(a[2]), last(b[2]), "{ours} inference RAM + stack");
        assert_eq!(first(a[3]), first(b[3]), "{ours} instructions per EM step");
        assert_eq!(
            first(a[4]),
            first(b[4]),
            "{ours} instructions per training iteration"
        );
        let (adaptive_ours, adaptive_theirs) = (numbers_in(a[6]), numbers_in(b[5]));
        assert!(
            !adaptive_ours.is_empty() && adaptive_theirs.starts_with(&adaptive_ours),
            "{ours} adaptive forecast: {adaptive_ours:?} vs boards/README.md's {adaptive_theirs:?}"
        );
        if let Some(core) = core {
            // "... measured M0 1 032 + 11 172 = 12 204 B, M4F ...": static + stack = total.
            let stated = training_ram
                .match_indices(&format!(" {core} "))
                .filter_map(|(i, key)| {
                    let rest = &training_ram[i + key.len()..];
                    let sum = &rest[..rest.find(" B")?];
                    let only_the_sum = sum.chars().all(|c| c.is_ascii_digit() || " +=".contains(c));
                    (only_the_sum && sum.contains(" = "))
                        .then(|| numbers_in(sum).last().cloned())?
                })
                .collect::<Vec<_>>();
            assert_eq!(stated, [last(a[5]).unwrap()], "{ours} training RAM + stack");
        }
    }
}
