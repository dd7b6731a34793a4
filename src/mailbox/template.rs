//! The mailbox path template (`--mailbox`, default `/var/mail/%u`).
//!
//! It must never produce a path from a user name that is not safe.

use std::path::{Component, Path, PathBuf};

use crate::username;

#[derive(Debug, Clone)]
pub struct Template(String);

impl Template {
    /// Check a template: it must be absolute (a relative one would depend on the
    /// directory inetd starts pop1d in) and contain `%u`, and no other `%`
    /// sequence than `%%`.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut has_user = false;
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('u' | 'h') => has_user = true,
                    Some('%') => {}
                    _ => {
                        return Err(format!(
                            "mailbox template {text:?}: only %u, %h and %% are known"
                        ))
                    }
                }
            }
        }
        if !has_user {
            return Err(format!("mailbox template {text:?} has neither %u nor %h"));
        }
        // `%h` is a home directory, absolute itself.
        if !text.starts_with('/') && !text.starts_with("%h") {
            return Err(format!(
                "mailbox template {text:?} is relative: give an absolute path"
            ));
        }
        Ok(Template(text.to_owned()))
    }

    /// The template as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory every mailbox lies under: the template's part before its
    /// first `%`, up to its last `/` (`/var/mail` for `/var/mail/%u`). `None`
    /// when the template begins with `%h`.
    pub fn fixed_dir(&self) -> Option<PathBuf> {
        let fixed = &self.0[..self.0.find('%').unwrap_or(self.0.len())];
        let dir = &fixed[..fixed.rfind('/')?];
        Some(PathBuf::from(if dir.is_empty() { "/" } else { dir }))
    }

    /// Whether the template names a system account's home directory (`%h`).
    pub fn uses_home(&self) -> bool {
        self.0.replace("%%", "").contains("%h")
    }

    /// The path of `user`'s mailbox, or `None` when the name is not safe.
    pub fn resolve(&self, user: &str) -> Option<PathBuf> {
        self.resolve_with_home(user, None)
    }

    /// The path of `user`'s mailbox, `%h` being `home` (a system account's home
    /// directory, absolute); `None` when the name is not safe, or `%h` is used
    /// without a home that is absolute and free of `..`.
    pub fn resolve_with_home(&self, user: &str, home: Option<&Path>) -> Option<PathBuf> {
        if !username::is_safe(user) {
            return None;
        }
        let home = match home {
            Some(home)
                if home.is_absolute() && !home.components().any(|c| c == Component::ParentDir) =>
            {
                Some(home.to_str()?.trim_end_matches('/'))
            }
            _ => None,
        };
        let mut path = String::with_capacity(self.0.len() + user.len());
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            match (c, c == '%') {
                (_, true) => match chars.next() {
                    Some('u') => path.push_str(user),
                    Some('h') => path.push_str(home?),
                    _ => path.push('%'),
                },
                (c, false) => path.push(c),
            }
        }
        Some(PathBuf::from(path))
    }
}

impl Default for Template {
    fn default() -> Self {
        Template("/var/mail/%u".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_safe_names_only() {
        let template = Template::parse("/var/mail/%u").unwrap();
        assert_eq!(
            template.resolve("fred"),
            Some(PathBuf::from("/var/mail/fred"))
        );
        assert_eq!(template.resolve("../etc/passwd"), None);
        assert_eq!(template.resolve("a/b"), None);
        let nested = Template::parse("/srv/mail/%u/mbox-%%").unwrap();
        assert_eq!(
            nested.resolve("fred"),
            Some(PathBuf::from("/srv/mail/fred/mbox-%"))
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(Template::parse("/var/mail/inbox").is_err());
        assert!(Template::parse("mail/%u").is_err());
        let home = Template::parse("%h/mbox").unwrap();
        assert_eq!(
            home.resolve_with_home("fred", Some(Path::new("/home/fred/"))),
            Some(PathBuf::from("/home/fred/mbox"))
        );
        assert_eq!(home.resolve_with_home("fred", None), None);
        assert_eq!(
            home.resolve_with_home("fred", Some(Path::new("/home/../etc"))),
            None
        );
        assert_eq!(home.fixed_dir(), None);
        assert_eq!(
            Template::parse("/var/mail/%u").unwrap().fixed_dir(),
            Some(PathBuf::from("/var/mail"))
        );
        assert!(Template::parse("/var/mail/%d/%u").is_err());
    }
}
