//! A document's leaves as the pieces of lists ([`rules::pieces`](crate::rules::pieces)):
//! the list a leaf is in is its path without a trailing index or `[]`, or without
//! the number its last key ends in (`cc1`, `cc2`).

use crate::rules::PathElem;
use crate::rules::pieces::{ListId, Pieces, numbered};

use super::collect::PathView;

/// The pieces of one document, and where the lists that came out of order are.
#[derive(Default)]
pub(crate) struct PathPieces {
    pieces: Pieces,
    unordered: Vec<(u64, String)>,
}

impl PathPieces {
    /// Read one leaf (`number`: a JSON number). `render` writes its location. The
    /// location of its list when the leaf completes a card in it.
    pub fn leaf(
        &mut self,
        path: &dyn PathView,
        text: &str,
        number: bool,
        render: impl Fn() -> String,
    ) -> Option<String> {
        let mut id = None;
        let added = self.pieces.add_in(text, number, || {
            id = list_of(path);
            id
        });
        if added.unordered
            && let Some((list, _)) = id
        {
            self.unordered.push((list, render()));
        }
        added.joined.map(|_| render())
    }

    /// After the whole document: the location of a list that holds a card when its
    /// pieces are joined in the order their numbers give.
    pub fn finish(&self) -> Option<String> {
        let (list, _) = self.pieces.finish()?;
        let location = self.unordered.iter().find(|(l, _)| *l == list);
        Some(location.map_or_else(String::new, |(_, at)| at.clone()))
    }
}

/// The list a leaf's path puts it in, and the number its place gives it. `None` for
/// a path of no elements.
fn list_of(path: &dyn PathView) -> Option<(u64, Option<u64>)> {
    let mut end = path.len();
    let mut order = None;
    while end > 0 {
        match path.get(end - 1) {
            Some(PathElem::Index(i)) => {
                order = order.or(u64::try_from(i).ok());
                end -= 1;
            }
            Some(PathElem::Key("")) => end -= 1,
            _ => break,
        }
    }
    if path.len() == 0 {
        return None;
    }
    let mut id = ListId::default();
    for i in 0..end {
        match path.get(i)? {
            // A last key that ends in a number: one of numbered boxes.
            PathElem::Key(k) if i + 1 == path.len() => {
                let (stem, n) = numbered(k);
                id.key(stem);
                order = n;
            }
            PathElem::Key(k) => id.key(k),
            PathElem::Index(n) => id.index(n),
        }
    }
    Some((id.finish(), order))
}
