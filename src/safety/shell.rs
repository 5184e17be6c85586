//! Reading a shell command line the way the shell will run it, for the policy: every simple
//! command it contains (in `&&`, `||`, `;`, `&`, pipes, subshells, `$(...)`, backticks and
//! process substitution, also inside double quotes), each as its words after quote removal,
//! with the files it redirects output to. Pure, and conservative: what cannot be read for
//! sure (an unterminated quote) is an error, which the policy treats as a refusal.
//!
//! Not a full shell: variables are not expanded and globs not matched; reserved words
//! (`if`, `then`, `do`, ...) are dropped so the commands inside compound statements are
//! seen as commands.

/// One command as the shell would run it: its words, where its output goes, and the
/// pipeline it sits in (to see `curl ... | sh`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    pub words: Vec<String>,
    /// Files written by `>`, `>>`, `&>`, `>|`, `2>`...
    pub writes: Vec<String>,
    /// Index of its pipeline, and its place in it.
    pub pipeline: usize,
    pub stage: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    #[error("nested too deeply")]
    TooDeep,
}

/// What a command substitution contributes to a word: its output, unknown until it runs.
pub const SUBSTITUTED: &str = "$(…)";

/// Deeper than this, a command line is not something an agent writes by accident.
const MAX_DEPTH: usize = 16;

/// Every simple command in `line`, in order; nested ones (substitutions) come before the
/// command that contains them, as the shell runs them.
pub fn commands(line: &str) -> Result<Vec<SimpleCommand>, ShellError> {
    let mut out = Vec::new();
    let mut pipelines = 0;
    parse_into(line, 0, &mut pipelines, &mut out)?;
    Ok(out)
}

/// Parses `line` (a whole script: also the text of `bash -c` and `$(...)`) into `out`.
pub fn parse_into(
    line: &str,
    depth: usize,
    pipelines: &mut usize,
    out: &mut Vec<SimpleCommand>,
) -> Result<(), ShellError> {
    if depth > MAX_DEPTH {
        return Err(ShellError::TooDeep);
    }
    let tokens = lex(line, depth, pipelines, out)?;
    let mut current = SimpleCommand {
        pipeline: *pipelines,
        ..SimpleCommand::default()
    };
    let mut stage = 0;
    let mut pending_write = false;
    let mut pending_read = false;
    let flush = |current: &mut SimpleCommand, out: &mut Vec<SimpleCommand>| {
        // Reserved words lead into the commands of compound statements.
        while current
            .words
            .first()
            .is_some_and(|w| RESERVED.contains(&w.as_str()))
        {
            current.words.remove(0);
        }
        if !current.words.is_empty() || !current.writes.is_empty() {
            out.push(std::mem::take(current));
        } else {
            *current = SimpleCommand::default();
        }
    };
    for token in tokens {
        match token {
            Token::Word(w) => {
                if pending_write {
                    current.writes.push(w);
                    pending_write = false;
                } else if pending_read {
                    pending_read = false;
                } else {
                    current.words.push(w);
                }
            }
            Token::Pipe => {
                flush(&mut current, out);
                stage += 1;
                current.pipeline = *pipelines;
                current.stage = stage;
            }
            Token::Separator => {
                flush(&mut current, out);
                *pipelines += 1;
                stage = 0;
                current.pipeline = *pipelines;
                current.stage = 0;
            }
            Token::RedirectOut => pending_write = true,
            Token::RedirectIn => pending_read = true,
        }
    }
    flush(&mut current, out);
    *pipelines += 1;
    Ok(())
}

/// Words that start or end compound commands and functions; the command after them is what
/// runs.
const RESERVED: [&str; 19] = [
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in", "case",
    "esac", "{", "}", "!", "function", "coproc", "time",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Pipe,
    /// `;`, `&`, `&&`, `||`, newline, `(`, `)`.
    Separator,
    RedirectOut,
    RedirectIn,
}

/// Splits into words and operators; substitutions are parsed on the spot into `out`.
fn lex(
    line: &str,
    depth: usize,
    pipelines: &mut usize,
    out: &mut Vec<SimpleCommand>,
) -> Result<Vec<Token>, ShellError> {
    let chars: Vec<char> = line.chars().collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    // A word was started (even an empty one: `''`).
    let mut in_word = false;
    let mut i = 0;
    // Here-documents whose delimiter word is next, and those waiting for their body.
    let mut heredoc_next: Option<bool> = None;
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    macro_rules! end_word {
        () => {
            if in_word {
                if let Some(strip_tabs) = heredoc_next.take() {
                    heredocs.push((word.clone(), strip_tabs));
                }
                tokens.push(Token::Word(std::mem::take(&mut word)));
                in_word = false;
            }
        };
    }
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {
                end_word!();
                i += 1;
            }
            '\n' => {
                // Ends the delimiter word too, so it is known before the body is skipped.
                end_word!();
                tokens.push(Token::Separator);
                i += 1;
                // The bodies of the here-documents of that line, in order.
                for (delimiter, strip_tabs) in std::mem::take(&mut heredocs) {
                    loop {
                        if i >= chars.len() {
                            return Err(ShellError::Unterminated("here-document"));
                        }
                        let end = find(&chars, i, '\n').unwrap_or(chars.len());
                        let line: String = chars[i..end].iter().collect();
                        i = end + 1;
                        let line = if strip_tabs {
                            line.trim_start_matches('\t')
                        } else {
                            &line
                        };
                        if line == delimiter {
                            break;
                        }
                    }
                }
            }
            ';' | '(' | ')' => {
                end_word!();
                tokens.push(Token::Separator);
                i += 1;
            }
            '&' => {
                end_word!();
                if chars.get(i + 1) == Some(&'>') {
                    // `&>` and `&>>`: stdout and stderr to a file.
                    tokens.push(Token::RedirectOut);
                    i += if chars.get(i + 2) == Some(&'>') { 3 } else { 2 };
                } else {
                    tokens.push(Token::Separator);
                    i += if chars.get(i + 1) == Some(&'&') { 2 } else { 1 };
                }
            }
            '|' => {
                end_word!();
                match chars.get(i + 1) {
                    Some('|') => {
                        tokens.push(Token::Separator);
                        i += 2;
                    }
                    Some('&') => {
                        tokens.push(Token::Pipe);
                        i += 2;
                    }
                    _ => {
                        tokens.push(Token::Pipe);
                        i += 1;
                    }
                }
            }
            '>' | '<' if chars.get(i + 1) == Some(&'(') => {
                // Process substitution: a command of its own.
                let (inner, next) = balanced(&chars, i + 2, '(', ')')?;
                parse_into(&inner, depth + 1, pipelines, out)?;
                // The substitution is a word (a file name) that may go on: `<(:)#x`.
                in_word = true;
                word.push_str(SUBSTITUTED);
                i = next;
            }
            '>' | '<' => {
                // A file descriptor number just before (`2>`) is part of the operator.
                if in_word && !word.is_empty() && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                end_word!();
                // `<>` opens for writing too.
                let mut output = c == '>';
                let mut j = i + 1;
                if !output && chars.get(j) == Some(&'>') {
                    output = true;
                    j += 1;
                }
                if output && matches!(chars.get(j), Some('>') | Some('|')) {
                    j += 1;
                }
                if !output && chars.get(j) == Some(&'<') {
                    j += 1;
                    if chars.get(j) == Some(&'<') {
                        // Here-string: the word is data, not a file.
                        j += 1;
                    } else {
                        // Here-document: the next word is its delimiter; its body starts
                        // on the next line and is data (for a shell reading it, a script the
                        // policy cannot see: see `policy`).
                        let strip_tabs = chars.get(j) == Some(&'-');
                        if strip_tabs {
                            j += 1;
                        }
                        heredoc_next = Some(strip_tabs);
                    }
                }
                if chars.get(j) == Some(&'&') {
                    // `2>&1`, `<&0`, `>&-`: a descriptor. `>& file` is a file, as `&>`.
                    let mut k = j + 1;
                    while chars.get(k).is_some_and(|d| *d == ' ' || *d == '\t') {
                        k += 1;
                    }
                    let mut end = k;
                    while chars
                        .get(end)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '-')
                    {
                        end += 1;
                    }
                    let descriptor = end > k
                        && chars
                            .get(end)
                            .is_none_or(|d| d.is_whitespace() || ";&|)".contains(*d));
                    if descriptor || !output {
                        i = end.max(j + 1);
                        continue;
                    }
                    j += 1;
                }
                tokens.push(if output {
                    Token::RedirectOut
                } else {
                    Token::RedirectIn
                });
                i = j;
            }
            '#' if !in_word => {
                // A comment runs to the end of the line.
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' => {
                // A backslash-newline joins lines: it is not a word, not even an empty one.
                match chars.get(i + 1) {
                    Some('\n') => {}
                    Some(&next) => {
                        in_word = true;
                        word.push(next);
                    }
                    None => {}
                }
                i += 2;
            }
            '\'' => {
                in_word = true;
                let end = find(&chars, i + 1, '\'').ok_or(ShellError::Unterminated("'"))?;
                word.extend(&chars[i + 1..end]);
                i = end + 1;
            }
            '"' => {
                in_word = true;
                i = double_quoted(&chars, i + 1, &mut word, depth, pipelines, out)?;
            }
            '`' => {
                in_word = true;
                let end = find(&chars, i + 1, '`').ok_or(ShellError::Unterminated("`"))?;
                let inner: String = chars[i + 1..end].iter().collect();
                parse_into(&inner, depth + 1, pipelines, out)?;
                word.push_str(SUBSTITUTED);
                i = end + 1;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                in_word = true;
                word.push_str(SUBSTITUTED);
                let (inner, next) = balanced(&chars, i + 2, '(', ')')?;
                if inner.starts_with('(') && inner.ends_with(')') && {
                    // `$((...))` is arithmetic only when its inner parentheses are one pair.
                    let body: Vec<char> = inner.chars().collect();
                    balanced(&body, 1, '(', ')').is_ok_and(|(_, end)| end == body.len())
                } {
                    // No command, but it may hold substitutions.
                    lex(&inner, depth + 1, pipelines, out)?;
                    i = next;
                } else {
                    parse_into(&inner, depth + 1, pipelines, out)?;
                    i = next;
                }
            }
            '$' if chars.get(i + 1) == Some(&'\'') => {
                // ANSI-C quoting: `$'...'`, with backslash escapes.
                in_word = true;
                let mut j = i + 2;
                loop {
                    match chars.get(j) {
                        None => return Err(ShellError::Unterminated("$'")),
                        Some('\'') => break,
                        Some('\\') => {
                            let (decoded, used) = ansi_c_escape(&chars[j + 1..]);
                            word.extend(decoded);
                            j += 1 + used.max(1);
                        }
                        Some(&other) => {
                            word.push(other);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
            }
            other => {
                in_word = true;
                word.push(other);
                i += 1;
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(word));
    }
    Ok(tokens)
}

/// The body of a double-quoted string from `start`; returns the index after its closing
/// quote. Substitutions inside run, so they are parsed.
fn double_quoted(
    chars: &[char],
    start: usize,
    word: &mut String,
    depth: usize,
    pipelines: &mut usize,
    out: &mut Vec<SimpleCommand>,
) -> Result<usize, ShellError> {
    let mut i = start;
    loop {
        match chars.get(i) {
            None => return Err(ShellError::Unterminated("\"")),
            Some('"') => return Ok(i + 1),
            Some('\\') => {
                match chars.get(i + 1) {
                    Some(&e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                    Some('\n') => {}
                    Some(&e) => {
                        word.push('\\');
                        word.push(e);
                    }
                    None => return Err(ShellError::Unterminated("\"")),
                }
                i += 2;
            }
            Some('`') => {
                let end = find(chars, i + 1, '`').ok_or(ShellError::Unterminated("`"))?;
                let inner: String = chars[i + 1..end].iter().collect();
                parse_into(&inner, depth + 1, pipelines, out)?;
                word.push_str(SUBSTITUTED);
                i = end + 1;
            }
            Some('$') if chars.get(i + 1) == Some(&'(') => {
                word.push_str(SUBSTITUTED);
                let (inner, next) = balanced(chars, i + 2, '(', ')')?;
                parse_into(&inner, depth + 1, pipelines, out)?;
                i = next;
            }
            Some(&c) => {
                word.push(c);
                i += 1;
            }
        }
    }
}

/// The text up to the `close` that balances an already opened `open`, skipping quoted
/// text; returns it and the index after the closer.
fn balanced(
    chars: &[char],
    start: usize,
    open: char,
    close: char,
) -> Result<(String, usize), ShellError> {
    let mut level = 1;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '\'' => {
                i = find(chars, i + 1, '\'').ok_or(ShellError::Unterminated("'"))?;
            }
            '"' => {
                // Skip to the matching quote, minding escapes.
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(ShellError::Unterminated("\""));
                }
                i = j;
            }
            c if c == open => level += 1,
            c if c == close => {
                level -= 1;
                if level == 0 {
                    return Ok((chars[start..i].iter().collect(), i + 1));
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(ShellError::Unterminated("$("))
}

/// One escape of `$'...'` after its backslash: the character(s) it stands for and how many
/// characters it used (`\x72` is `r`, as bash reads it).
fn ansi_c_escape(rest: &[char]) -> (Option<char>, usize) {
    let Some(&first) = rest.first() else {
        return (None, 0);
    };
    let number = |radix: u32, from: usize, max: usize| {
        let digits: String = rest[from..]
            .iter()
            .take(max)
            .take_while(|c| c.is_digit(radix))
            .collect();
        let value = u32::from_str_radix(&digits, radix)
            .ok()
            .and_then(char::from_u32);
        (value, from + digits.len())
    };
    match first {
        'n' => (Some('\n'), 1),
        't' => (Some('\t'), 1),
        'r' => (Some('\r'), 1),
        'e' | 'E' => (Some('\u{1b}'), 1),
        'a' => (Some('\u{7}'), 1),
        'x' => number(16, 1, 2),
        'u' => number(16, 1, 4),
        'U' => number(16, 1, 8),
        '0'..='7' => number(8, 0, 3),
        other => (Some(other), 1),
    }
}

fn find(chars: &[char], from: usize, what: char) -> Option<usize> {
    (from..chars.len()).find(|&i| chars[i] == what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<String>> {
        commands(line)
            .unwrap()
            .into_iter()
            .map(|c| c.words)
            .collect()
    }

    #[test]
    fn lists_pipes_and_substitutions_are_separate_commands() {
        assert_eq!(
            words("cd a && rm -rf b || echo 'x y'; ls | wc -l"),
            vec![
                vec!["cd", "a"],
                vec!["rm", "-rf", "b"],
                vec!["echo", "x y"],
                vec!["ls"],
                vec!["wc", "-l"],
            ]
        );
        assert_eq!(
            words("echo \"$(rm -rf /)\" `dd if=x`"),
            vec![
                vec!["rm", "-rf", "/"],
                vec!["dd", "if=x"],
                vec!["echo", SUBSTITUTED, SUBSTITUTED]
            ]
        );
        assert_eq!(words("r\\m -r''f x"), vec![vec!["rm", "-rf", "x"]]);
        assert_eq!(
            words("if true; then rm -rf x; fi"),
            vec![vec!["true"], vec!["rm", "-rf", "x"]]
        );
    }

    #[test]
    fn redirections_name_the_files_written() {
        let c = commands("echo hi > /etc/passwd 2>&1; cat < in.txt >> log").unwrap();
        assert_eq!(c[0].words, ["echo", "hi"]);
        assert_eq!(c[0].writes, ["/etc/passwd"]);
        assert_eq!(c[1].words, ["cat"]);
        assert_eq!(c[1].writes, ["log"]);
        let c = commands("cmd &> out 2> err").unwrap();
        assert_eq!(c[0].writes, ["out", "err"]);
    }

    #[test]
    fn pipelines_are_numbered_for_the_watch_patterns() {
        let c = commands("curl -s x | sh; echo done").unwrap();
        assert_eq!((c[0].pipeline, c[0].stage), (c[1].pipeline, 0));
        assert_eq!(c[1].stage, 1);
        assert_ne!(c[2].pipeline, c[0].pipeline);
    }

    #[test]
    fn the_harder_corners_of_the_grammar_do_not_hide_a_command_or_a_write() {
        // A line continuation is not an empty word.
        assert_eq!(words("rm \\\n -rf x"), vec![vec!["rm", "-rf", "x"]]);
        // Process substitution is a command of its own; the word it sits in goes on.
        assert_eq!(
            words("diff <(rm -rf a) b"),
            vec![vec!["rm", "-rf", "a"], vec!["diff", SUBSTITUTED, "b"]]
        );
        // `<>` opens for writing; `>& file` writes a file, `>&2` only a descriptor.
        assert_eq!(commands("cat <> f").unwrap()[0].writes, ["f"]);
        assert_eq!(commands("echo x >& out").unwrap()[0].writes, ["out"]);
        assert!(commands("echo x >&2").unwrap()[0].writes.is_empty());
        // A here-document's body is text, not commands; the line after it is a command.
        assert_eq!(
            words("cat <<EOF\nrm -rf /\nEOF\nls"),
            vec![vec!["cat"], vec!["ls"]]
        );
        assert!(commands("cat <<EOF\nno end").is_err());
        // `$((` is arithmetic only when it closes as arithmetic.
        assert_eq!(words("echo $((1 + 2))"), vec![vec!["echo", SUBSTITUTED]]);
        assert_eq!(
            words("echo $((rm -rf x) )"),
            vec![vec!["rm", "-rf", "x"], vec!["echo", SUBSTITUTED]]
        );
        // ANSI-C quoting spells a name out of escapes.
        assert_eq!(words("$'\\x72m' -rf x"), vec![vec!["rm", "-rf", "x"]]);
        assert_eq!(words("$'\\162\\155' x"), vec![vec!["rm", "x"]]);
        // Reserved words are not the command.
        assert_eq!(words("time rm x"), vec![vec!["rm", "x"]]);
    }

    #[test]
    fn what_cannot_be_read_for_sure_is_an_error() {
        assert_eq!(commands("echo 'open"), Err(ShellError::Unterminated("'")));
        assert!(commands("echo $(ls").is_err());
        assert!(commands(&"$(".repeat(40)).is_err());
    }
}
