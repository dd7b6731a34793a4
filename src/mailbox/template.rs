//! The mailbox path template (`--mailbox`, default `/var/mail/%u`).
//!
//! It must never produce a path from a user name that is not safe.

use std::path::PathBuf;

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
                    Some('u') => has_user = true,
                    Some('%') => {}
                    _ => {
                        return Err(format!(
                            "mailbox template {text:?}: only %u and %% are known"
                        ))
                    }
                }
            }
        }
        if !has_user {
            return Err(format!("mailbox template {text:?} has no %u"));
        }
        if !text.starts_with('/') {
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

    /// The path of `user`'s mailbox, or `None` when the name is not safe.
    pub fn resolve(&self, user: &str) -> Option<PathBuf> {
        if !username::is_safe(user) {
            return None;
        }
        let mut path = String::with_capacity(self.0.len() + user.len());
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            match (c, c == '%') {
                (_, true) => match chars.next() {
                    Some('u') => path.push_str(user),
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
        assert!(Template::parse("/var/mail/%d/%u").is_err());
    }
}
