//! Colours as data: semantic roles (`running`, `waiting`, `border_focus`...) styled by a
//! theme file in `themes/`. A theme may name a `parent` and override only some roles; what
//! no theme in the chain sets falls back to the default theme. Named ANSI colours only, so it
//! reads the same over SSH and in tmux; `NO_COLOR` keeps the modifiers and drops the colours.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};

/// The built-in themes, embedded so the binary needs no files beside it.
const BUILTIN: [(&str, &str); 4] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// How deep `parent` chains may go (a loop is an error, not a hang).
const MAX_PARENTS: usize = 8;

macro_rules! roles {
    ($($role:ident),* $(,)?) => {
        /// What a piece of the screen means; the theme decides how it looks.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(non_camel_case_types)]
        pub enum Role { $($role),* }

        impl Role {
            pub const ALL: &'static [Role] = &[$(Role::$role),*];
            pub fn name(self) -> &'static str {
                match self { $(Role::$role => stringify!($role)),* }
            }
        }
    };
}

roles!(
    text,
    dim,
    title,
    key,
    border,
    border_focus,
    selected,
    header,
    pending,
    running,
    waiting,
    paused,
    done,
    failed,
    stopped,
    error,
    warning,
    finding,
    review,
    decision,
    control,
    bar,
    bar_empty,
    search_match,
);

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    styles: BTreeMap<Role, Style>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("theme {}: {reason}", path.display())]
pub struct ThemeError {
    pub path: PathBuf,
    pub reason: String,
}

impl Theme {
    pub fn style(&self, role: Role) -> Style {
        self.styles.get(&role).copied().unwrap_or_default()
    }

    /// The built-in default theme (16 ANSI colours).
    pub fn default_theme() -> Theme {
        // The embedded default is checked by a unit test, so this cannot fail.
        Theme::load("default", &[], false).expect("the built-in default theme parses")
    }

    /// Loads `name` from `user_dirs` (first) or the built-ins, following `parent`s.
    /// `no_color` strips colours and keeps modifiers.
    pub fn load(name: &str, user_dirs: &[PathBuf], no_color: bool) -> Result<Theme, ThemeError> {
        let mut chain = Vec::new();
        let mut next = Some(name.to_string());
        while let Some(current) = next.take() {
            if chain.len() > MAX_PARENTS {
                return Err(ThemeError {
                    path: PathBuf::from(&current),
                    reason: "too many parents (is there a loop?)".into(),
                });
            }
            let (path, text) = find(&current, user_dirs)?;
            let file = parse(&path, &text)?;
            next = file.parent.clone();
            chain.push(file);
        }
        // The default theme under everything: every role has a style.
        let mut styles = if name == "default" && chain.len() == 1 {
            BTreeMap::new()
        } else {
            Theme::default_theme().styles
        };
        for file in chain.iter().rev() {
            styles.extend(file.roles.iter().map(|(r, s)| (*r, *s)));
        }
        if no_color {
            for style in styles.values_mut() {
                *style = Style {
                    fg: None,
                    bg: None,
                    ..*style
                };
            }
        }
        Ok(Theme {
            name: name.to_string(),
            styles,
        })
    }
}

struct ThemeFile {
    parent: Option<String>,
    roles: BTreeMap<Role, Style>,
}

fn find(name: &str, user_dirs: &[PathBuf]) -> Result<(PathBuf, String), ThemeError> {
    for dir in user_dirs {
        let path = dir.join(format!("{name}.toml"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok((path, text));
        }
    }
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((n, text)) => Ok((PathBuf::from(format!("themes/{n}.toml")), text.to_string())),
        None => {
            let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            Err(ThemeError {
                path: PathBuf::from(name),
                reason: format!("no such theme (built in: {})", known.join(", ")),
            })
        }
    }
}

fn parse(path: &Path, text: &str) -> Result<ThemeFile, ThemeError> {
    let fail = |reason: String| ThemeError {
        path: path.to_path_buf(),
        reason,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(e.message().trim().to_string()))?;
    let mut file = ThemeFile {
        parent: None,
        roles: BTreeMap::new(),
    };
    for (key, value) in &table {
        match (key.as_str(), value) {
            ("name", _) => {}
            ("parent", toml::Value::String(p)) => file.parent = Some(p.clone()),
            ("roles", toml::Value::Table(roles)) => {
                for (role_name, spec) in roles {
                    let role = Role::ALL
                        .iter()
                        .find(|r| r.name() == role_name)
                        .ok_or_else(|| fail(format!("unknown role `roles.{role_name}`")))?;
                    let spec = spec.as_str().ok_or_else(|| {
                        fail(format!(
                            "`roles.{role_name}` must be a string like \"bold green\""
                        ))
                    })?;
                    let style = parse_style(spec)
                        .map_err(|why| fail(format!("`roles.{role_name}`: {why}")))?;
                    file.roles.insert(*role, style);
                }
            }
            (other, _) => {
                return Err(fail(format!(
                    "unknown key `{other}` (expected name, parent, roles)"
                )));
            }
        }
    }
    Ok(file)
}

/// `"bold green on black"`: colours by ANSI name, modifiers by word.
pub fn parse_style(spec: &str) -> Result<Style, String> {
    let mut style = Style::default();
    let mut words = spec.split_whitespace().peekable();
    while let Some(word) = words.next() {
        match word {
            "bold" => style = style.add_modifier(Modifier::BOLD),
            "dim" => style = style.add_modifier(Modifier::DIM),
            "italic" => style = style.add_modifier(Modifier::ITALIC),
            "underlined" => style = style.add_modifier(Modifier::UNDERLINED),
            "reversed" => style = style.add_modifier(Modifier::REVERSED),
            "on" => {
                let bg = words.next().ok_or("`on` needs a colour after it")?;
                style = style.bg(color(bg)?);
            }
            name => style = style.fg(color(name)?),
        }
    }
    Ok(style)
}

fn color(name: &str) -> Result<Color, String> {
    Ok(match name {
        "reset" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" => Color::Gray,
        "darkgray" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        other => {
            return Err(format!(
                "unknown colour `{other}` (use one of the 16 ANSI names, e.g. green, lightblue, darkgray)"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_loads_and_styles_every_role() {
        for (name, _) in BUILTIN {
            let theme = Theme::load(name, &[], false).unwrap();
            for role in Role::ALL {
                assert!(
                    theme.styles.contains_key(role),
                    "{name} lacks {}",
                    role.name()
                );
            }
        }
        assert_eq!(
            Theme::default_theme().style(Role::running).fg,
            Some(Color::Green)
        );
    }

    #[test]
    fn a_user_theme_inherits_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "parent = \"default\"\n[roles]\nrunning = \"bold magenta\"\n",
        )
        .unwrap();
        let theme = Theme::load("mine", &[dir.path().to_path_buf()], false).unwrap();
        assert_eq!(
            theme.style(Role::running),
            Style::default()
                .fg(Color::Magenta)
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            theme.style(Role::failed),
            Theme::default_theme().style(Role::failed)
        );
    }

    #[test]
    fn a_bad_theme_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[roles]\nrunning = \"grene\"\n").unwrap();
        let err = Theme::load("bad", &[dir.path().to_path_buf()], false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "theme {}: `roles.running`: unknown colour `grene` (use one of the 16 ANSI names, e.g. green, lightblue, darkgray)",
                path.display()
            )
        );
        std::fs::write(&path, "[roles]\nrunnin = \"green\"\n").unwrap();
        assert!(
            Theme::load("bad", &[dir.path().to_path_buf()], false)
                .unwrap_err()
                .to_string()
                .contains("unknown role `roles.runnin`")
        );
        std::fs::write(&path, "parent = \"bad\"\n").unwrap();
        assert!(
            Theme::load("bad", &[dir.path().to_path_buf()], false)
                .unwrap_err()
                .to_string()
                .contains("too many parents")
        );
    }

    #[test]
    fn no_color_keeps_modifiers_only() {
        let theme = Theme::load("default", &[], true).unwrap();
        assert!(
            Role::ALL
                .iter()
                .all(|r| theme.style(*r).fg.is_none() && theme.style(*r).bg.is_none())
        );
        assert!(
            theme
                .style(Role::border_focus)
                .add_modifier
                .contains(Modifier::BOLD)
        );
    }
}
