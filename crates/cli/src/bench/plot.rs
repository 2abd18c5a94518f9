//! PNG plots with plotters' bitmap backend. Text uses a TrueType font loaded from a
//! standard path (no fontconfig); without one the plots are drawn without text and
//! BENCHMARKS.md describes their axes.

use super::report::{Better, ScenarioResult, Series};
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a font for text; false when none could be loaded.
fn fonts() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        let mut paths: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("NETCORE_BENCH_FONT") {
            paths.push(p.into());
        }
        paths.extend(FONT_PATHS.iter().map(PathBuf::from));
        for p in paths {
            if let Ok(bytes) = std::fs::read(&p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn series<'a>(results: &'a [ScenarioResult], plot: &str) -> Vec<&'a Series> {
    results
        .iter()
        .flat_map(|r| r.series.iter())
        .filter(|s| s.plot == plot)
        .collect()
}

type E = Box<dyn std::error::Error>;

/// A plot drawer: (file, results, draw text) → whether it had data.
type Drawer = fn(&Path, &[ScenarioResult], bool) -> Result<bool, E>;

/// Draws every plot it has data for; returns the files written and notes.
pub fn draw_all(dir: &Path, results: &[ScenarioResult]) -> (Vec<PathBuf>, Vec<String>) {
    let text = fonts();
    let mut notes = Vec::new();
    if !text {
        notes.push("no TrueType font found (set NETCORE_BENCH_FONT=/path/font.ttf): plots drawn without text; BENCHMARKS.md describes their axes".to_string());
    }
    let mut files = Vec::new();
    let jobs: [(&str, Drawer); 4] = [
        ("sizes.png", sizes),
        ("latency_cdf.png", latency_cdf),
        ("hol.png", hol),
        ("ratios.png", ratios),
    ];
    for (name, f) in jobs {
        let path = dir.join(name);
        match f(&path, results, text) {
            Ok(true) => files.push(path),
            Ok(false) => {}
            Err(e) => notes.push(format!("plot {name} failed: {e}")),
        }
    }
    (files, notes)
}

fn sizes(path: &Path, results: &[ScenarioResult], text: bool) -> Result<bool, E> {
    let ss = series(results, "sizes");
    if ss.is_empty() {
        return Ok(false);
    }
    let ymax = ss
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.1;
    let xmax = ss
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max)
        * 2.0;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.margin(15);
    if text {
        b.caption(
            "One-way throughput vs message size (loopback TCP)",
            ("sans-serif", 22),
        )
        .x_label_area_size(45)
        .y_label_area_size(70);
    }
    let mut chart = b.build_cartesian_2d((32f64..xmax).log_scale(), 0f64..ymax)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("message size (bytes)").y_desc("MiB/s");
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    for (i, s) in ss.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let drawn = chart.draw_series(LineSeries::new(s.points.clone(), c.stroke_width(2)))?;
        if text {
            drawn.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
            });
        }
        chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(true)
}

fn latency_cdf(path: &Path, results: &[ScenarioResult], text: bool) -> Result<bool, E> {
    let ss = series(results, "latency_cdf");
    if ss.is_empty() {
        return Ok(false);
    }
    let all: Vec<f64> = ss
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|v| *v > 0.0)
        .collect();
    let xmin = all.iter().copied().fold(f64::INFINITY, f64::min).max(0.1) * 0.8;
    let xmax = all.iter().copied().fold(1.0, f64::max) * 1.2;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.margin(15);
    if text {
        b.caption(
            "64-byte request/response round trip: CDF",
            ("sans-serif", 22),
        )
        .x_label_area_size(45)
        .y_label_area_size(60);
    }
    let mut chart = b.build_cartesian_2d((xmin..xmax).log_scale(), 0f64..100f64)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("round trip (µs)").y_desc("percentile");
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    for (i, s) in ss.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| p.0 > 0.0).collect();
        let drawn = chart.draw_series(LineSeries::new(pts, c.stroke_width(2)))?;
        if text {
            drawn.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    root.present()?;
    Ok(true)
}

/// Grouped bars: p99 probe latency under load per link (log scale), one bar per protocol.
fn hol(path: &Path, results: &[ScenarioResult], text: bool) -> Result<bool, E> {
    let ss = series(results, "hol");
    if ss.is_empty() {
        return Ok(false);
    }
    let mut links: Vec<String> = Vec::new();
    let mut protos: Vec<String> = Vec::new();
    for s in &ss {
        let (l, p) = s.name.split_once('/').unwrap_or((&s.name, ""));
        if !links.iter().any(|x| x == l) {
            links.push(l.to_string());
        }
        if !protos.iter().any(|x| x == p) {
            protos.push(p.to_string());
        }
    }
    let vals: Vec<f64> = ss
        .iter()
        .filter_map(|s| s.points.first().map(|p| p.1))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let ymin = vals.iter().copied().fold(f64::INFINITY, f64::min).min(1.0) / 2.0;
    let ymax = vals.iter().copied().fold(1.0, f64::max) * 3.0;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.margin(15);
    if text {
        b.caption(
            format!(
                "p99 of 64-byte requests during a bulk transfer ({})",
                links.join(", ")
            ),
            ("sans-serif", 20),
        )
        .x_label_area_size(45)
        .y_label_area_size(70);
    }
    let n = links.len() as f64;
    let mut chart = b.build_cartesian_2d(0f64..n, (ymin..ymax).log_scale())?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh();
    let links2 = links.clone();
    let fmt = move |x: &f64| {
        let i = x.floor() as usize;
        if (x - x.floor() - 0.5).abs() < 0.01 {
            links2.get(i).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    if text {
        mesh.y_desc("p99 latency (ms, log)")
            .x_labels(links.len() * 2 + 1)
            .x_label_formatter(&fmt);
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    let w = 0.8 / protos.len().max(1) as f64;
    for (k, p) in protos.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = ss
            .iter()
            .filter(|s| s.name.ends_with(&format!("/{p}")))
            .filter_map(|s| {
                let l = s.name.split_once('/').map(|x| x.0)?;
                let j = links.iter().position(|x| x == l)? as f64;
                let v = s.points.first()?.1;
                (v.is_finite() && v > 0.0).then(|| {
                    let x0 = j + 0.1 + k as f64 * w;
                    Rectangle::new([(x0, ymin), (x0 + w * 0.9, v)], c.filled())
                })
            })
            .collect();
        let drawn = chart.draw_series(bars)?;
        if text {
            drawn
                .label(p.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(true)
}

/// Horizontal bars of netcore/baseline as "times better" (higher-is-better ratios as is,
/// lower-is-better inverted), log scale; the line at 1 is parity.
fn ratios(path: &Path, results: &[ScenarioResult], text: bool) -> Result<bool, E> {
    let recs: Vec<_> = results
        .iter()
        .flat_map(|r| r.records.iter())
        .filter(|r| r.ratio.is_finite() && r.ratio > 0.0 && !r.baseline.starts_with("goal"))
        .filter(|r| {
            !r.metric.starts_with("oneway_")
                || r.metric == "oneway_64B"
                || r.metric == "oneway_1MiB"
        })
        .collect();
    if recs.is_empty() {
        return Ok(false);
    }
    let h = (recs.len() as u32 * 22 + 120).max(300);
    let root = BitMapBackend::new(path, (1100, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = if text {
        root.split_horizontally(430)
    } else {
        root.split_horizontally(1)
    };
    let n = recs.len() as f64;
    let better = |r: &super::report::Record| match r.better {
        Better::Higher => r.ratio,
        Better::Lower => 1.0 / r.ratio,
    };
    let xmin = recs.iter().map(|r| better(r)).fold(1.0, f64::min) / 2.0;
    let xmax = recs.iter().map(|r| better(r)).fold(1.0, f64::max) * 2.0;
    let mut b = ChartBuilder::on(&right);
    b.margin(10);
    if text {
        b.caption(
            "netcore vs baseline (x better; 1 = parity)",
            ("sans-serif", 20),
        )
        .x_label_area_size(35);
    }
    let mut chart = b.build_cartesian_2d((xmin..xmax).log_scale(), 0f64..n)?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_y_mesh().y_labels(0);
    if !text {
        mesh.x_labels(0);
    }
    mesh.draw()?;
    chart.draw_series(recs.iter().enumerate().map(|(i, r)| {
        let v = better(r);
        let c = if v >= 1.0 { COLORS[2] } else { COLORS[3] };
        let y = n - i as f64 - 1.0;
        Rectangle::new([(xmin, y + 0.15), (v, y + 0.85)], c.filled())
    }))?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, 0.0), (1.0, n)],
        BLACK.stroke_width(2),
    )))?;
    if text {
        // Row labels, aligned with the plotting area (caption 20 px + margin).
        let top = 10 + 30;
        let bottom = h as i32 - 10 - 35;
        let row = (bottom - top) as f64 / n;
        for (i, r) in recs.iter().enumerate() {
            let y = top + (row * (i as f64 + 0.5)) as i32 - 6;
            left.draw_text(
                &format!("{} {} vs {}", r.scenario, r.metric, r.baseline),
                &("sans-serif", 13).into_font().color(&BLACK),
                (5, y),
            )?;
        }
    }
    let _ = left;
    root.present()?;
    Ok(true)
}

/// Error for callers that want anyhow.
#[allow(dead_code)]
pub fn check(files: &[PathBuf]) -> Result<()> {
    if files.is_empty() {
        return Err(anyhow!("no plots"));
    }
    Ok(())
}
