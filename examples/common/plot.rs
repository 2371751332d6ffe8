//! Line, point and band charts rendered to PNG bytes with plotters.
//!
//! Charts are described as data ([`Chart`], [`Item`]) and rendered side by side into one
//! image by [`render_png`], which returns the encoded PNG (the caller decides where it goes;
//! see `output.rs`). Text uses DejaVu Sans, embedded from the `dejavu` crate, so no system
//! font is needed.

use std::sync::OnceLock;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf32;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Colors used by the examples.
pub const BLUE: RGBColor = RGBColor(31, 119, 180);
/// Orange.
pub const ORANGE: RGBColor = RGBColor(230, 110, 20);
/// Green.
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
/// Red.
pub const RED: RGBColor = RGBColor(214, 39, 40);
/// Purple.
pub const PURPLE: RGBColor = RGBColor(148, 103, 189);
/// Grey.
pub const GREY: RGBColor = RGBColor(120, 120, 120);

/// One thing drawn in a chart.
#[derive(Clone, Debug)]
pub enum Item {
    /// A polyline.
    Line {
        /// Points in order.
        points: Vec<(f32, f32)>,
        /// Color.
        color: RGBColor,
        /// Opacity in `[0, 1]`.
        alpha: f64,
        /// Stroke width in pixels.
        width: u32,
        /// Legend label.
        label: Option<String>,
    },
    /// Filled circles.
    Points {
        /// Centers.
        points: Vec<(f32, f32)>,
        /// Color.
        color: RGBColor,
        /// Radius in pixels.
        size: u32,
        /// Legend label.
        label: Option<String>,
    },
    /// The area between two curves sampled at the same abscissae.
    Band {
        /// Lower curve.
        lower: Vec<(f32, f32)>,
        /// Upper curve.
        upper: Vec<(f32, f32)>,
        /// Color.
        color: RGBColor,
        /// Opacity in `[0, 1]`.
        alpha: f64,
        /// Legend label.
        label: Option<String>,
    },
    /// A dashed vertical marker at `x`.
    VLine {
        /// Position.
        x: f32,
        /// Color.
        color: RGBColor,
    },
}

impl Item {
    /// A labelled solid line.
    pub fn line(points: Vec<(f32, f32)>, color: RGBColor, width: u32, label: &str) -> Self {
        Item::Line {
            points,
            color,
            alpha: 1.0,
            width,
            label: (!label.is_empty()).then(|| label.to_string()),
        }
    }

    /// A labelled set of points.
    pub fn points(points: Vec<(f32, f32)>, color: RGBColor, size: u32, label: &str) -> Self {
        Item::Points {
            points,
            color,
            size,
            label: (!label.is_empty()).then(|| label.to_string()),
        }
    }

    fn xy(&self) -> Box<dyn Iterator<Item = (f32, f32)> + '_> {
        match self {
            Item::Line { points, .. } | Item::Points { points, .. } => {
                Box::new(points.iter().copied())
            }
            Item::Band { lower, upper, .. } => Box::new(lower.iter().chain(upper).copied()),
            Item::VLine { .. } => Box::new(std::iter::empty()),
        }
    }
}

/// A chart: title, axis labels, whether the y axis is logarithmic, and its items.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// Caption above the chart.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// Logarithmic y axis (non-positive values are left out).
    pub log_y: bool,
    /// Where the legend goes.
    pub legend: Legend,
    /// What to draw, in order (later items on top).
    pub items: Vec<Item>,
}

/// Legend position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Legend {
    /// The corner with the fewest drawn points.
    #[default]
    Auto,
    /// Upper left corner.
    UpperLeft,
    /// Upper right corner.
    UpperRight,
    /// Lower left corner.
    LowerLeft,
    /// Lower right corner.
    LowerRight,
}

/// Registers the embedded font once; returns an error message if the font is unusable.
fn fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font could not be loaded".to_string())
        })
        .clone()
}

fn finite_range(values: impl Iterator<Item = f32>, log: bool) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        // Twelve decades at most: the tick search is slow on wider log ranges.
        let lo = lo.max(hi * 1e-12);
        let (lo, hi) = if hi / lo < 2.0 {
            (lo / 1.5, hi * 1.5)
        } else {
            (lo, hi)
        };
        (lo / 1.2, (hi * 1.2).min(f32::MAX))
    } else {
        let pad = if hi > lo {
            (hi - lo) * 0.05
        } else {
            lo.abs().max(1.0) * 0.1
        };
        (lo - pad, hi + pad)
    }
}

/// An affine change of one axis's coordinates, `v -> (v - offset) * scale`, that keeps
/// the plotted numbers of ordinary size: plotters' tick search misbehaves (it can loop for
/// ever) on ranges near `f32::MAX` or ranges tiny next to their magnitude, such as a few
/// seconds of Unix time.
#[derive(Clone, Copy, Debug, PartialEq)]
struct AxisMap {
    offset: f64,
    scale: f64,
    exponent: i32,
}

impl AxisMap {
    const IDENTITY: AxisMap = AxisMap {
        offset: 0.0,
        scale: 1.0,
        exponent: 0,
    };

    fn of(values: impl Iterator<Item = f32>) -> AxisMap {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite()) {
            lo = lo.min(f64::from(v));
            hi = hi.max(f64::from(v));
        }
        if lo > hi {
            return AxisMap::IDENTITY;
        }
        let magnitude = lo.abs().max(hi.abs());
        let offset = if hi - lo < 1e-3 * magnitude { lo } else { 0.0 };
        let size = (lo - offset).abs().max((hi - offset).abs());
        let exponent = if size >= 1e6 || (size > 0.0 && size < 1e-3) {
            size.log10().floor() as i32
        } else {
            0
        };
        AxisMap {
            offset,
            scale: 10f64.powi(-exponent),
            exponent,
        }
    }

    fn apply(&self, v: f32) -> f32 {
        ((f64::from(v) - self.offset) * self.scale) as f32
    }

    fn label(&self, label: &str) -> String {
        let mut l = label.to_string();
        if self.offset != 0.0 {
            l = format!("{l} - {}", self.offset);
        }
        if self.exponent != 0 {
            l = format!("{l} (x 1e{})", self.exponent);
        }
        l
    }
}

/// `chart` with its coordinates mapped to numbers of ordinary size ([`AxisMap`]); the axis
/// labels say how. Log axes are left alone.
fn readable(chart: &Chart) -> Chart {
    let xs = AxisMap::of(chart.items.iter().flat_map(|i| i.xy()).map(|p| p.0));
    let ys = if chart.log_y {
        AxisMap::IDENTITY
    } else {
        AxisMap::of(chart.items.iter().flat_map(|i| i.xy()).map(|p| p.1))
    };
    if xs == AxisMap::IDENTITY && ys == AxisMap::IDENTITY {
        return chart.clone();
    }
    let map = |pts: &Vec<(f32, f32)>| -> Vec<(f32, f32)> {
        pts.iter()
            .map(|&(x, y)| (xs.apply(x), ys.apply(y)))
            .collect()
    };
    let items = chart
        .items
        .iter()
        .map(|item| match item {
            Item::Line {
                points,
                color,
                alpha,
                width,
                label,
            } => Item::Line {
                points: map(points),
                color: *color,
                alpha: *alpha,
                width: *width,
                label: label.clone(),
            },
            Item::Points {
                points,
                color,
                size,
                label,
            } => Item::Points {
                points: map(points),
                color: *color,
                size: *size,
                label: label.clone(),
            },
            Item::Band {
                lower,
                upper,
                color,
                alpha,
                label,
            } => Item::Band {
                lower: map(lower),
                upper: map(upper),
                color: *color,
                alpha: *alpha,
                label: label.clone(),
            },
            Item::VLine { x, color } => Item::VLine {
                x: xs.apply(*x),
                color: *color,
            },
        })
        .collect();
    Chart {
        title: chart.title.clone(),
        x_label: xs.label(&chart.x_label),
        y_label: ys.label(&chart.y_label),
        log_y: chart.log_y,
        legend: chart.legend,
        items,
    }
}

/// Renders `charts` in a grid of `columns` columns into a `width` x `height` PNG.
pub fn render_png(
    charts: &[Chart],
    columns: usize,
    (width, height): (u32, u32),
) -> Result<Vec<u8>, String> {
    fonts()?;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let columns = columns.max(1);
        let rows = charts.len().div_ceil(columns).max(1);
        let areas = root.split_evenly((rows, columns));
        for (chart, area) in charts.iter().zip(areas.iter()) {
            let chart = &readable(chart);
            let (x0, x1) =
                finite_range(chart.items.iter().flat_map(|i| i.xy()).map(|p| p.0), false);
            let (y0, y1) = finite_range(
                chart.items.iter().flat_map(|i| i.xy()).map(|p| p.1),
                chart.log_y,
            );
            let mut builder = ChartBuilder::on(area);
            builder
                .caption(&chart.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60);
            if chart.log_y {
                let mut ctx = builder
                    .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                    .map_err(|e| e.to_string())?;
                draw(&mut ctx, chart, (x0, x1), (y0, y1))?;
            } else {
                let mut ctx = builder
                    .build_cartesian_2d(x0..x1, y0..y1)
                    .map_err(|e| e.to_string())?;
                draw(&mut ctx, chart, (x0, x1), (y0, y1))?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&rgb, width, height)
}

/// The corner (upper left, upper right, lower right, lower left, in that order of
/// preference) whose box of 40 % x 30 % of the plot holds the fewest points of the items.
fn emptiest_corner(chart: &Chart, (x0, x1): (f32, f32), (y0, y1): (f32, f32)) -> Legend {
    let fy = |y: f32| {
        if chart.log_y {
            y.max(f32::MIN_POSITIVE).ln()
        } else {
            y
        }
    };
    let (ly0, ly1) = (fy(y0), fy(y1));
    let mut counts = [0usize; 4];
    for (x, y) in chart.items.iter().flat_map(|i| i.xy()) {
        let u = (x - x0) / (x1 - x0);
        let v = (fy(y) - ly0) / (ly1 - ly0);
        let (left, right, top, bottom) = (u < 0.4, u > 0.6, v > 0.7, v < 0.3);
        for (k, inside) in [left && top, right && top, right && bottom, left && bottom]
            .into_iter()
            .enumerate()
        {
            counts[k] += usize::from(inside);
        }
    }
    let best = (0..4).min_by_key(|&k| (counts[k], k)).unwrap_or(0);
    [
        Legend::UpperLeft,
        Legend::UpperRight,
        Legend::LowerRight,
        Legend::LowerLeft,
    ][best]
}

fn draw<'a, Y>(
    ctx: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf32, Y>>,
    chart: &Chart,
    (x0, x1): (f32, f32),
    (y0, y1): (f32, f32),
) -> Result<(), String>
where
    Y: Ranged<ValueType = f32> + ValueFormatter<f32>,
{
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    ctx.configure_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(err)?;
    let keep = |y: f32| y.is_finite() && (!chart.log_y || y > 0.0);
    let mut labelled = false;
    for item in &chart.items {
        match item {
            Item::Line {
                points,
                color,
                alpha,
                width,
                label,
            } => {
                let style = color.mix(*alpha).stroke_width(*width);
                let pts: Vec<(f32, f32)> = points.iter().copied().filter(|p| keep(p.1)).collect();
                let series = ctx.draw_series(LineSeries::new(pts, style)).map_err(err)?;
                if let Some(l) = label {
                    labelled = true;
                    let c = *color;
                    let w = *width;
                    series.label(l.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(w))
                    });
                }
            }
            Item::Points {
                points,
                color,
                size,
                label,
            } => {
                let c = *color;
                let pts: Vec<(f32, f32)> = points.iter().copied().filter(|p| keep(p.1)).collect();
                let s = *size;
                let series = ctx
                    .draw_series(pts.into_iter().map(|p| Circle::new(p, s, c.filled())))
                    .map_err(err)?;
                if let Some(l) = label {
                    labelled = true;
                    series
                        .label(l.as_str())
                        .legend(move |(x, y)| Circle::new((x + 10, y), s, c.filled()));
                }
            }
            Item::Band {
                lower,
                upper,
                color,
                alpha,
                label,
            } => {
                let c = *color;
                let a = *alpha;
                let mut poly: Vec<(f32, f32)> =
                    upper.iter().copied().filter(|p| keep(p.1)).collect();
                poly.extend(lower.iter().rev().copied().filter(|p| keep(p.1)));
                let series = ctx
                    .draw_series(std::iter::once(Polygon::new(poly, c.mix(a).filled())))
                    .map_err(err)?;
                if let Some(l) = label {
                    labelled = true;
                    series.label(l.as_str()).legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 20, y + 6)], c.mix(a).filled())
                    });
                }
            }
            Item::VLine { x, color } => {
                let c = *color;
                let (lo, hi) = (y0, y1);
                let steps = 40;
                let log = chart.log_y;
                // Dashes: short segments from bottom to top.
                let segs = (0..steps).step_by(2).map(move |i| {
                    let f = |k: i32| {
                        if log {
                            lo * (hi / lo).powf(k as f32 / steps as f32)
                        } else {
                            lo + (hi - lo) * k as f32 / steps as f32
                        }
                    };
                    PathElement::new(vec![(*x, f(i)), (*x, f(i + 1))], c.mix(0.6).stroke_width(1))
                });
                ctx.draw_series(segs).map_err(err)?;
            }
        }
    }
    if labelled {
        let legend = match chart.legend {
            Legend::Auto => emptiest_corner(chart, (x0, x1), (y0, y1)),
            l => l,
        };
        let pos = match legend {
            Legend::Auto | Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
            Legend::LowerRight => SeriesLabelPosition::LowerRight,
        };
        ctx.configure_series_labels()
            .position(pos)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// A tick label: integers without decimals, tiny or huge numbers in exponent form, others
/// with at most three decimals.
fn tick(v: &f32) -> String {
    let v = *v;
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if v == v.round() {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Encodes an 8-bit RGB buffer as PNG.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Default);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}
