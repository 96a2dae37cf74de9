//! AMQP topic patterns: `*` matches exactly one word, `#` zero or more words.

/// A topic pattern such as `access.*` or `#`, matched against routing keys (event types) with
/// RabbitMQ's topic-exchange semantics.
///
/// ```
/// use forten_shared::events::TopicPattern;
/// let p = TopicPattern::new("access.*");
/// assert!(p.matches("access.granted"));
/// assert!(!p.matches("door.forced"));
/// assert!(TopicPattern::new("#").matches("camera.online"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPattern(String);

impl TopicPattern {
    /// Wraps a pattern string.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `routing_key` matches the pattern.
    ///
    /// ```
    /// use forten_shared::events::TopicPattern;
    /// assert!(TopicPattern::new("#.forced").matches("door.forced"));
    /// assert!(TopicPattern::new("door.#").matches("door"));
    /// ```
    pub fn matches(&self, routing_key: &str) -> bool {
        let pat: Vec<&str> = self.0.split('.').collect();
        let key: Vec<&str> = routing_key.split('.').collect();
        matches(&pat, &key)
    }
}

impl From<&str> for TopicPattern {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for TopicPattern {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<super::EventType> for TopicPattern {
    fn from(t: super::EventType) -> Self {
        Self::new(t.as_str())
    }
}

/// Iterative matcher with backtracking on the last `#` (linear in practice, no recursion).
fn matches(pat: &[&str], key: &[&str]) -> bool {
    let (mut p, mut k) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        if p < pat.len() && pat[p] == "#" {
            star = Some((p, k));
            p += 1;
        } else if p < pat.len() && (pat[p] == "*" || pat[p] == key[k]) {
            p += 1;
            k += 1;
        } else if let Some((sp, sk)) = star {
            // let the last `#` swallow one more word
            p = sp + 1;
            k = sk + 1;
            star = Some((sp, sk + 1));
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == "#" {
        p += 1;
    }
    p == pat.len()
}

#[cfg(test)]
mod tests {
    use super::TopicPattern;

    #[test]
    fn rabbitmq_topic_semantics() {
        let cases = [
            ("#", "a", true),
            ("#", "a.b.c", true),
            ("*", "a", true),
            ("*", "a.b", false),
            ("a.*", "a.b", true),
            ("a.*", "a", false),
            ("a.#", "a", true),
            ("a.#", "a.b.c", true),
            ("#.c", "a.b.c", true),
            ("#.c", "c", true),
            ("a.#.c", "a.c", true),
            ("a.#.c", "a.x.y.c", true),
            ("a.#.c", "a.x.y.d", false),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.c", false),
            ("#.b.#", "a.b.c", true),
            ("#.b.#", "b", true),
            ("user.created", "user.created", true),
            ("user.created", "user.deleted", false),
            ("*.forced", "door.forced", true),
            ("door.held_open", "door.held_open", true),
        ];
        for (p, k, want) in cases {
            assert_eq!(TopicPattern::new(p).matches(k), want, "{p} vs {k}");
        }
    }
}
