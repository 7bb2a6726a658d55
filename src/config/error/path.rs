//! [`JsonPath`]: where in the plugin JSON an error is, written like the document
//! (`rules[2].split.weights[1].percent`).

use std::fmt;

/// Where in the configuration document: `rules[3].split.weights`, or `$` for the whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonPath(Vec<PathSegment>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// The whole document.
    pub fn root() -> JsonPath {
        JsonPath::default()
    }

    /// The member `key` of the object at this path.
    pub fn key(&self, key: &str) -> JsonPath {
        let mut path = self.clone();
        path.push(PathSegment::Key(key.to_string()));
        path
    }

    /// The item `index` of the array at this path.
    pub fn index(&self, index: usize) -> JsonPath {
        let mut path = self.clone();
        path.push(PathSegment::Index(index));
        path
    }

    pub fn push(&mut self, segment: PathSegment) {
        self.0.push(segment);
    }

    pub fn pop(&mut self) -> Option<PathSegment> {
        self.0.pop()
    }

    /// The path of the value holding this one (the root's is the root).
    pub fn parent(&self) -> JsonPath {
        JsonPath(
            self.0
                .split_last()
                .map_or(&[][..], |(_, parent)| parent)
                .to_vec(),
        )
    }

    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("$");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if i == 0 => f.write_str(key)?,
                PathSegment::Key(key) => write!(f, ".{key}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_written_like_the_documents_they_point_into() {
        let root = JsonPath::root();
        assert_eq!(root.to_string(), "$");
        let path = root.key("rules").index(3).key("split").key("weights");
        assert_eq!(path.to_string(), "rules[3].split.weights");
        assert_eq!(path.parent().to_string(), "rules[3].split");
        assert_eq!(root.parent(), root);
    }
}
