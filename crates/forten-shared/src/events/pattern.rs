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
pub struct TopicPattern {
    pattern: String,
    /// The pattern's words, split once.
    words: Vec<String>,
}

impl TopicPattern {
    /// Wraps a pattern string.
    pub fn new(pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        let words = pattern.split('.').map(str::to_owned).collect();
        Self { pattern, words }
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `routing_key` matches the pattern.
    ///
    /// ```
    /// use forten_shared::events::TopicPattern;
    /// assert!(TopicPattern::new("#.forced").matches("door.forced"));
    /// assert!(TopicPattern::new("door.#").matches("door"));
    /// ```
    pub fn matches(&self, routing_key: &str) -> bool {
        // routing keys are short: split into a stack buffer, no allocation
        let mut buf = [""; 16];
        let mut n = 0;
        for word in routing_key.split('.') {
            if n == buf.len() {
                let key: Vec<&str> = routing_key.split('.').collect();
                return matches(&self.words, &key);
            }
            buf[n] = word;
            n += 1;
        }
        matches(&self.words, &buf[..n])
    }
}

impl From<&str> for TopicPattern {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for TopicPattern {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<super::EventType> for TopicPattern {
    fn from(t: super::EventType) -> Self {
        Self::new(t.as_str())
    }
}

/// Iterative matcher with backtracking on the last `#` (linear in practice, no recursion).
fn matches(pat: &[String], key: &[&str]) -> bool {
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
