//! Forward pages read one row past their end, to know whether more follow.

/// A page of at most `first` items out of `rows`, read with a limit of `first + 1`; and
/// whether more follow.
pub fn split_page<T>(mut rows: Vec<T>, first: u64) -> (Vec<T>, bool) {
    let first = usize::try_from(first).unwrap_or(usize::MAX);
    let more = rows.len() > first;
    rows.truncate(first);
    (rows, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_past_the_end_says_more_follow_and_is_dropped() {
        assert_eq!(split_page(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(split_page(vec![1, 2], 2), (vec![1, 2], false));
        assert_eq!(split_page(Vec::<u8>::new(), 2), (vec![], false));
    }
}
