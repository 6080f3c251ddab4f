//! The report's figures as SVG, drawn with `plotters`' SVG backend.
//!
//! Built without plotters' `ttf` feature: no font-kit, no fontconfig, no system library.
//! Text goes into the SVG as `<text>` elements (sized by plotters' built-in estimate) and
//! the viewer draws it with its own fonts.

use std::path::Path;

use plotters::prelude::*;

use crate::report::{Report, Sample};

type Result = std::result::Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plotting failed: {e:?}")
}

const SIZE: (u32, u32) = (900, 540);

/// One line of a figure: its legend, its style, its points.
struct Line {
    label: String,
    style: ShapeStyle,
    points: Vec<(f64, f64)>,
}

impl Line {
    fn new(
        label: impl Into<String>,
        style: impl Into<ShapeStyle>,
        points: Vec<(f64, f64)>,
    ) -> Line {
        Line {
            label: label.into(),
            style: style.into(),
            points,
        }
    }
}

/// Axes, the lines and their legend: what every figure here is made of.
fn line_chart(
    path: &Path,
    caption: String,
    x_max: f64,
    y_max: f64,
    (x_desc, y_desc): (&str, &str),
    legend: SeriesLabelPosition,
    lines: Vec<Line>,
) -> Result {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    for line in lines {
        let style = line.style;
        chart
            .draw_series(LineSeries::new(line.points, style))
            .map_err(err)?
            .label(line.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// The completion-time CDF of the leechers, with the Kumar–Ross bound as a vertical line.
pub fn completion_cdf(r: &Report, path: &Path) -> Result {
    let mut times: Vec<f64> = r
        .nodes
        .iter()
        .filter(|n| !n.seed)
        .filter_map(|n| n.download_time_s)
        .collect();
    times.sort_by(f64::total_cmp);
    let n = r.summary.leechers.max(1) as f64;
    let bound = r.summary.kumar_ross.bound_s;
    let x_max = times.last().copied().unwrap_or(1.0).max(bound) * 1.05;
    let mut pts = vec![(0.0, 0.0)];
    for (k, &t) in times.iter().enumerate() {
        pts.push((t, k as f64 / n));
        pts.push((t, (k + 1) as f64 / n));
    }
    line_chart(
        path,
        format!("{}: completion-time CDF", r.scenario),
        x_max,
        1.0,
        ("download time (s)", "fraction of leechers done"),
        SeriesLabelPosition::LowerRight,
        vec![
            Line::new("leechers", BLUE.stroke_width(2), pts),
            Line::new(
                format!("Kumar-Ross bound {bound:.1} s"),
                RED,
                vec![(bound, 0.0), (bound, 1.0)],
            ),
        ],
    )
}

/// One value of every sample, over time.
fn over_time(r: &Report, f: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    r.timeline.iter().map(|s| (s.t_s, f(s))).collect()
}

fn t_max(r: &Report) -> f64 {
    r.timeline.last().map_or(1.0, |s| s.t_s).max(1e-3)
}

/// Swarm progress over time: pieces held by the leechers and leechers done, as fractions.
pub fn progress(r: &Report, path: &Path) -> Result {
    let n = r.summary.leechers.max(1) as f64;
    line_chart(
        path,
        format!("{}: swarm progress", r.scenario),
        t_max(r),
        1.0,
        ("time (s)", "fraction"),
        SeriesLabelPosition::UpperLeft,
        vec![
            Line::new(
                "pieces held by arrived leechers",
                BLUE.stroke_width(2),
                over_time(r, |s| s.progress),
            ),
            Line::new(
                "leechers done",
                GREEN.stroke_width(2),
                over_time(r, |s| f64::from(s.completed) / n),
            ),
        ],
    )
}

/// Piece availability over time: the normalised entropy, and the rarest piece's copies
/// relative to the average piece's.
pub fn availability(r: &Report, path: &Path) -> Result {
    line_chart(
        path,
        format!("{}: piece availability", r.scenario),
        t_max(r),
        1.05,
        ("time (s)", ""),
        SeriesLabelPosition::LowerRight,
        vec![
            Line::new(
                "normalised entropy of piece copies",
                MAGENTA.stroke_width(2),
                over_time(r, |s| s.entropy),
            ),
            Line::new(
                "rarest piece / mean piece copies",
                CYAN.stroke_width(2),
                over_time(r, |s| {
                    if s.availability_mean > 0.0 {
                        f64::from(s.availability_min) / s.availability_mean
                    } else {
                        0.0
                    }
                }),
            ),
        ],
    )
}

/// One row of the server-load scenario: downloaders, bytes the web server sent, bytes
/// plain HTTP would have sent (N × F).
#[derive(Clone, Copy, Debug)]
pub struct LoadPoint {
    pub downloaders: u32,
    pub server_bytes: u64,
    pub plain_http_bytes: u64,
}

/// Bytes a web server sends against the number of downloaders, both axes logarithmic:
/// the swarm's web seed next to plain HTTP.
pub fn server_load(points: &[LoadPoint], caption: &str, path: &Path) -> Result {
    const MIB: f64 = (1 << 20) as f64;
    let x_max = points
        .iter()
        .map(|p| p.downloaders)
        .max()
        .unwrap_or(1)
        .max(2) as f64
        * 1.5;
    let y_max = points
        .iter()
        .map(|p| p.plain_http_bytes.max(p.server_bytes))
        .max()
        .unwrap_or(1) as f64
        / MIB
        * 2.0;
    let y_min = points
        .iter()
        .map(|p| p.server_bytes.min(p.plain_http_bytes))
        .min()
        .unwrap_or(1) as f64
        / MIB
        / 2.0;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0.8f64..x_max).log_scale(),
            (y_min.max(0.01)..y_max).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("downloaders (flash crowd)")
        .y_desc("MiB the server sends")
        .draw()
        .map_err(err)?;
    let series = [
        (
            "plain HTTP (N x F)",
            ShapeStyle::from(RED).stroke_width(2),
            points
                .iter()
                .map(|p| (f64::from(p.downloaders), p.plain_http_bytes as f64 / MIB))
                .collect::<Vec<_>>(),
        ),
        (
            "shoal serve (web seed + swarm)",
            ShapeStyle::from(BLUE).stroke_width(2),
            points
                .iter()
                .map(|p| (f64::from(p.downloaders), p.server_bytes as f64 / MIB))
                .collect(),
        ),
    ];
    for (label, style, pts) in series {
        chart
            .draw_series(LineSeries::new(pts.clone(), style))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, style.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
