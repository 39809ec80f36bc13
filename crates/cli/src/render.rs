//! Terminal output: aligned tables, colour only on a terminal.

/// Whether to colour, decided once.
#[derive(Clone, Copy)]
pub struct Style {
    colour: bool,
}

impl Style {
    pub fn new(colour: bool) -> Style {
        Style { colour }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn ok(&self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// A status word in its colour.
    pub fn status(&self, word: &str) -> String {
        match word {
            "SUCCEEDED" => self.paint("32", word),
            "FAILED" | "TIMED_OUT" | "ABORTED" => self.paint("31", word),
            "RUNNING" | "PENDING_REDRIVE" => self.paint("33", word),
            _ => word.to_owned(),
        }
    }

    /// A line of an explanation: holding leaves green, waiting ones yellow.
    pub fn explanation_line(&self, line: &str) -> String {
        if line.trim_start().starts_with("[x]") {
            self.paint("32", line)
        } else if line.trim_start().starts_with("[ ]") {
            self.paint("33", line)
        } else {
            line.to_owned()
        }
    }
}

/// Prints rows aligned under headers; the second column is a status and is coloured.
pub fn table<const N: usize>(headers: &[&str; N], rows: &[[String; N]], style: Style) {
    let mut widths = headers.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>, raw: Vec<usize>| {
        let mut out = String::new();
        for (i, (cell, len)) in cells.iter().zip(raw).enumerate() {
            out.push_str(cell);
            if i + 1 < N {
                out.push_str(&" ".repeat(widths[i] - len + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(
        headers.iter().map(|h| style.bold(h)).collect(),
        headers.iter().map(|h| h.len()).collect(),
    );
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| if i == 1 { style.status(c) } else { c.clone() })
            .collect();
        line(cells, row.iter().map(|c| c.chars().count()).collect());
    }
}
