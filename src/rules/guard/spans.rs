//! Byte ranges asked "which of you overlap this one?" many times: a body of many
//! cards has many hits, and asking each of them about each other hit costs the
//! square of their number.

use std::ops::Range;

/// Ranges sorted by start, with the furthest end up to each: a question walks back
/// from the last range that starts before its range ends, and stops at the first
/// whose prefix reaches no further than its start. For ranges that do not overlap
/// one another (a scan's hits) that is the few that overlap the question.
pub struct Spans {
    /// `(range, index in the order given)`, sorted by start.
    ranges: Vec<(Range<usize>, usize)>,
    /// `reach[i]`: the largest end among `ranges[..=i]`.
    reach: Vec<usize>,
}

impl Spans {
    pub fn new<'a>(ranges: impl IntoIterator<Item = &'a Range<usize>>) -> Spans {
        let mut ranges: Vec<(Range<usize>, usize)> = ranges
            .into_iter()
            .cloned()
            .enumerate()
            .map(|(i, r)| (r, i))
            .collect();
        ranges.sort_by_key(|(r, _)| r.start);
        let reach = ranges
            .iter()
            .scan(0, |max, (r, _)| {
                *max = r.end.max(*max);
                Some(*max)
            })
            .collect();
        Spans { ranges, reach }
    }

    /// The ranges that overlap `range` (share a byte with it), with their index in
    /// the order they were given.
    pub fn overlapping(
        &self,
        range: &Range<usize>,
    ) -> impl Iterator<Item = (&Range<usize>, usize)> {
        let before = self.ranges.partition_point(|(r, _)| r.start < range.end);
        let start = range.start;
        (0..before)
            .rev()
            .take_while(move |i| self.reach.get(*i).is_some_and(|end| *end > start))
            .filter_map(|i| self.ranges.get(i))
            .filter(move |(r, _)| start < r.end)
            .map(|(r, i)| (r, *i))
    }

    /// Whether one range holds all of `range`.
    pub fn cover(&self, range: &Range<usize>) -> bool {
        if range.is_empty() {
            // An empty range overlaps nothing: look for one around its place.
            return self
                .ranges
                .iter()
                .any(|(r, _)| r.start <= range.start && range.end <= r.end);
        }
        self.overlapping(range)
            .any(|(r, _)| r.start <= range.start && range.end <= r.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answers are those of asking every range, for ranges that overlap one
    /// another or not, in any order.
    #[test]
    fn answers_as_asking_every_range_would() {
        let sets: [&[Range<usize>]; 4] = [
            &[],
            &[0..4, 5..9, 10..14],
            &[10..14, 0..4, 5..9],
            &[0..20, 2..3, 5..9, 8..12, 30..31],
        ];
        for ranges in sets {
            let spans = Spans::new(ranges);
            for start in 0..35 {
                for end in start..36 {
                    let q = start..end;
                    let mut got: Vec<usize> = spans.overlapping(&q).map(|(_, i)| i).collect();
                    got.sort_unstable();
                    let want: Vec<usize> = ranges
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.start < q.end && q.start < r.end)
                        .map(|(i, _)| i)
                        .collect();
                    assert_eq!(got, want, "{ranges:?} {q:?}");
                    let covered = ranges.iter().any(|r| r.start <= q.start && q.end <= r.end);
                    assert_eq!(spans.cover(&q), covered, "{ranges:?} {q:?}");
                }
            }
        }
    }
}
