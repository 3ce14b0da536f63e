//! Bar charts as inline SVG, drawn on the server: no script, no CDN, readable by screen
//! readers (each chart has a title and a description, each bar a title with its value),
//! and a table of the same figures beside it for whoever prefers reading.

use maud::{html, Markup};

/// One bar: its label under the axis, its value, and the value as shown.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

const WIDTH: f64 = 420.0;
const HEIGHT: f64 = 160.0;
const AXIS: f64 = 28.0;
const TOP: f64 = 16.0;

/// A bar chart titled `title`, with the bars' figures also as a table.
pub fn bars(id: &str, title: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let slot = if bars.is_empty() {
        WIDTH
    } else {
        WIDTH / bars.len() as f64
    };
    let bar_width = (slot * 0.7).max(2.0);
    let scale = |v: f64| {
        if max > 0.0 {
            (HEIGHT - AXIS - TOP) * v / max
        } else {
            0.0
        }
    };
    let description: Vec<String> = bars
        .iter()
        .map(|b| format!("{}: {}", b.label, b.shown))
        .collect();
    html! {
        figure.chart id=(id) {
            figcaption { (title) }
            svg role="img" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } aria-labelledby={ (id) "-t " (id) "-d" } {
                title id={ (id) "-t" } { (title) }
                desc id={ (id) "-d" } { (description.join("; ")) }
                line x1="0" y1=(HEIGHT - AXIS) x2=(WIDTH) y2=(HEIGHT - AXIS) class="axis" {}
                @for (i, b) in bars.iter().enumerate() {
                    @let h = scale(b.value);
                    @let x = slot * i as f64 + (slot - bar_width) / 2.0;
                    g.bar {
                        title { (b.label) ": " (b.shown) }
                        rect x=(x) y=(HEIGHT - AXIS - h) width=(bar_width) height=(h) {}
                        text x=(x + bar_width / 2.0) y=(HEIGHT - AXIS - h - 3.0) text-anchor="middle" class="value" { (b.shown) }
                        text x=(x + bar_width / 2.0) y=(HEIGHT - AXIS + 14.0) text-anchor="middle" class="label" { (b.label) }
                    }
                }
            }
            details {
                summary { (title) }
                table {
                    tbody {
                        @for b in bars {
                            tr { th scope="row" { (b.label) } td { (b.shown) } }
                        }
                    }
                }
            }
        }
    }
}
