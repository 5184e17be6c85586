//! Walks a command line the way the CLIs' parsers do: options (`-x`, `--name`,
//! `--name=value`), positionals (a lone `-` is one), and `--` ending the options.
//! Each simulated CLI decides what its options mean and how to refuse them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    Positional(&'a str),
    /// Everything after `--`.
    Rest(&'a [String]),
    Option {
        /// `--name` or `-x`, without any `=value`.
        name: &'a str,
        /// The value written as `--name=value`.
        inline: Option<&'a str>,
        /// The argument as given, for error messages.
        raw: &'a str,
    },
}

pub struct ArgWalker<'a> {
    args: &'a [String],
    next: usize,
}

impl<'a> ArgWalker<'a> {
    pub fn new(args: &'a [String]) -> Self {
        ArgWalker { args, next: 0 }
    }

    /// The value of an option: written inline, or the next argument (whatever it looks like).
    pub fn value(&mut self, inline: Option<&'a str>) -> Option<&'a str> {
        if inline.is_some() {
            return inline;
        }
        let value = self.args.get(self.next)?;
        self.next += 1;
        Some(value)
    }

    /// The next option; positionals, and everything after `--`, go to `positional` on the way.
    pub fn next_option(
        &mut self,
        positional: &mut Vec<String>,
    ) -> Option<(&'a str, Option<&'a str>, &'a str)> {
        loop {
            match self.next()? {
                Arg::Positional(p) => positional.push(p.to_string()),
                Arg::Rest(rest) => positional.extend(rest.iter().cloned()),
                Arg::Option { name, inline, raw } => return Some((name, inline, raw)),
            }
        }
    }

    /// The next argument if it is not an option, consumed (optional and variadic values).
    pub fn take_plain(&mut self) -> Option<&'a str> {
        let arg = self.args.get(self.next)?;
        if looks_like_option(arg) {
            return None;
        }
        self.next += 1;
        Some(arg)
    }
}

impl<'a> Iterator for ArgWalker<'a> {
    type Item = Arg<'a>;

    fn next(&mut self) -> Option<Arg<'a>> {
        let arg = self.args.get(self.next)?;
        self.next += 1;
        if arg == "--" {
            let rest = &self.args[self.next..];
            self.next = self.args.len();
            return Some(Arg::Rest(rest));
        }
        if !looks_like_option(arg) {
            return Some(Arg::Positional(arg));
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if arg.starts_with("--") => (name, Some(value)),
            _ => (arg.as_str(), None),
        };
        Some(Arg::Option {
            name,
            inline,
            raw: arg,
        })
    }
}

fn looks_like_option(arg: &str) -> bool {
    arg.starts_with('-') && arg != "-"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_options_values_and_the_end_of_options() {
        let args: Vec<String> = ["-p", "--model=m", "--add-dir", "/a", "/b", "-", "--", "-x"]
            .map(String::from)
            .to_vec();
        let mut w = ArgWalker::new(&args);
        assert_eq!(
            w.next(),
            Some(Arg::Option {
                name: "-p",
                inline: None,
                raw: "-p"
            })
        );
        let Some(Arg::Option { name, inline, .. }) = w.next() else {
            panic!()
        };
        assert_eq!((name, w.value(inline)), ("--model", Some("m")));
        assert!(matches!(
            w.next(),
            Some(Arg::Option {
                name: "--add-dir",
                ..
            })
        ));
        assert_eq!(
            (w.take_plain(), w.take_plain(), w.take_plain()),
            (Some("/a"), Some("/b"), Some("-"))
        );
        assert_eq!(w.next(), Some(Arg::Rest(&args[7..])));
        assert_eq!(w.next(), None);
    }
}
