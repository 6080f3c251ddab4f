//! The report's figures as SVG, drawn with `plotters`' SVG backend.
//!
//! Built without plotters' `ttf` feature: no font-kit, no fontconfig, no system library.
//! Text goes into the SVG as `<text>` elements (sized by plotters' built-in estimate) and
//! the viewer draws it with its own fonts.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;

type Result = std::result::Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plotting failed: {e:?}")
}

const SIZE: (u32, u32) = (900, 540);

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
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: completion-time CDF", r.scenario),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..x_max, 0f64..1.0f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("download time (s)")
        .y_desc("fraction of leechers done")
        .draw()
        .map_err(err)?;
    let mut pts = vec![(0.0, 0.0)];
    for (k, &t) in times.iter().enumerate() {
        pts.push((t, k as f64 / n));
        pts.push((t, (k + 1) as f64 / n));
    }
    chart
        .draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))
        .map_err(err)?
        .label("leechers")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(vec![(bound, 0.0), (bound, 1.0)], RED))
        .map_err(err)?
        .label(format!("Kumar-Ross bound {bound:.1} s"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Swarm progress over time: pieces held by the leechers and leechers done, as fractions.
pub fn progress(r: &Report, path: &Path) -> Result {
    let n = r.summary.leechers.max(1) as f64;
    let t_max = r.timeline.last().map_or(1.0, |s| s.t_s).max(1e-3);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: swarm progress", r.scenario),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..t_max, 0f64..1.0f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("fraction")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            r.timeline.iter().map(|s| (s.t_s, s.progress)),
            BLUE.stroke_width(2),
        ))
        .map_err(err)?
        .label("pieces held by arrived leechers")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            r.timeline
                .iter()
                .map(|s| (s.t_s, f64::from(s.completed) / n)),
            GREEN.stroke_width(2),
        ))
        .map_err(err)?
        .label("leechers done")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Piece availability over time: the normalised entropy, and the rarest piece's copies
/// relative to the average piece's.
pub fn availability(r: &Report, path: &Path) -> Result {
    let t_max = r.timeline.last().map_or(1.0, |s| s.t_s).max(1e-3);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: piece availability", r.scenario),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..t_max, 0f64..1.05f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            r.timeline.iter().map(|s| (s.t_s, s.entropy)),
            MAGENTA.stroke_width(2),
        ))
        .map_err(err)?
        .label("normalised entropy of piece copies")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MAGENTA.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            r.timeline.iter().map(|s| {
                let ratio = if s.availability_mean > 0.0 {
                    f64::from(s.availability_min) / s.availability_mean
                } else {
                    0.0
                };
                (s.t_s, ratio)
            }),
            CYAN.stroke_width(2),
        ))
        .map_err(err)?
        .label("rarest piece / mean piece copies")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], CYAN.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
