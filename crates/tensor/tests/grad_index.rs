//! Selecting and combining (narrow, pad_axis, concat, stack, index_select, index_add, gather,
//! scatter_add, where_mask, clamp): second-order checks against finite differences on random
//! shapes, values computed by hand, and the adjoint pairs the backward rules rely on.

mod common;

use common::{check, randn, random_dims, rng, uniform};
use ebm_tensor::Tensor;
use rand::RngExt;
use rand::rngs::StdRng;

/// The sum of the products of two tensors of the same shape.
fn inner(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.data().iter().zip(b.data()).map(|(u, v)| u * v).sum()
}

/// `count` random indices in `0..len`.
fn random_indices(r: &mut StdRng, count: usize, len: usize) -> Vec<usize> {
    (0..count).map(|_| r.random_range(0..len)).collect()
}

/// `dims` with `axis` set to `extent`.
fn with_extent(dims: &[usize], axis: usize, extent: usize) -> Vec<usize> {
    let mut dims = dims.to_vec();
    dims[axis] = extent;
    dims
}

#[test]
fn narrow_and_pad_axis_to_second_order() {
    let mut r = rng(20);
    for rank in 1..=3 {
        for _ in 0..3 {
            let dims = random_dims(&mut r, rank, 4);
            let axis = r.random_range(0..rank);
            let full = dims[axis];
            let start = r.random_range(0..full);
            let len = r.random_range(1..=full - start);
            // Exercise negative axes as well.
            let signed = if r.random::<bool>() {
                axis as isize
            } else {
                axis as isize - rank as isize
            };
            let x = randn(&mut r, &dims);
            check(
                "narrow",
                &|v| v[0].narrow(signed, start, len).silu(),
                std::slice::from_ref(&x),
                2,
            );

            let outer = len + r.random_range(0..3);
            let at = r.random_range(0..=outer - len);
            let y = randn(&mut r, &with_extent(&dims, axis, len));
            check(
                "pad_axis",
                &|v| v[0].pad_axis(signed, at, outer).silu(),
                &[y],
                2,
            );
        }
    }
}

#[test]
fn concat_of_several_pieces_along_each_axis_to_second_order() {
    let mut r = rng(21);
    let base = [2, 3, 2];
    for axis in [0isize, 1, 2, -1, -3] {
        let ax = axis.rem_euclid(3) as usize;
        for pieces in 1..=3 {
            let inputs: Vec<Tensor<f64>> = (0..pieces)
                .map(|_| {
                    let extent = r.random_range(1..=3);
                    randn(&mut r, &with_extent(&base, ax, extent))
                })
                .collect();
            check("concat", &|v| Tensor::concat(v, axis).silu(), &inputs, 2);
        }
    }
}

#[test]
fn stack_along_each_new_axis_to_second_order() {
    let mut r = rng(22);
    let dims = [2, 3];
    for axis in 0..=2 {
        let inputs: Vec<Tensor<f64>> = (0..3).map(|_| randn(&mut r, &dims)).collect();
        check("stack", &|v| Tensor::stack(v, axis).silu(), &inputs, 2);
    }
}

#[test]
fn index_select_and_index_add_with_repeats_to_second_order() {
    let mut r = rng(23);
    for rank in 1..=3 {
        for _ in 0..3 {
            let dims = random_dims(&mut r, rank, 4);
            let axis = r.random_range(0..rank);
            let full = dims[axis];
            // More indices than the extent, so that repeats are certain.
            let indices = random_indices(&mut r, full + 3, full);
            let x = randn(&mut r, &dims);
            check(
                "index_select",
                &|v| v[0].index_select(axis as isize, &indices).silu(),
                &[x],
                2,
            );

            let y = randn(&mut r, &with_extent(&dims, axis, indices.len()));
            check(
                "index_add",
                &|v| v[0].index_add(axis as isize, &indices, full).silu(),
                &[y],
                2,
            );
        }
    }
}

#[test]
fn gather_and_scatter_add_to_second_order() {
    let mut r = rng(24);
    for rank in 1..=3 {
        for _ in 0..3 {
            let dims = random_dims(&mut r, rank, 4);
            let axis = r.random_range(0..rank);
            let full = dims[axis];
            let index_dims = with_extent(&dims, axis, r.random_range(1..=4));
            let count: usize = index_dims.iter().product();
            let index = random_indices(&mut r, count, full);
            let x = randn(&mut r, &dims);
            check(
                "gather",
                &|v| {
                    v[0].gather(axis as isize, &index, index_dims.clone())
                        .silu()
                },
                &[x],
                2,
            );

            let y = randn(&mut r, &index_dims);
            check(
                "scatter_add",
                &|v| v[0].scatter_add(axis as isize, &index, dims.clone()).silu(),
                &[y],
                2,
            );
        }
    }
}

#[test]
fn where_mask_with_broadcasting_to_second_order() {
    let mut r = rng(25);
    // (self, mask, other): every one of the three is broadcast in some case.
    let cases: [(&[usize], &[usize], &[usize]); 5] = [
        (&[3, 4], &[3, 4], &[3, 4]),
        (&[3, 1], &[4], &[1, 4]),
        (&[4], &[2, 3, 4], &[3, 1]),
        (&[2, 3, 4], &[3, 1], &[]),
        (&[1], &[2, 1], &[2, 3]),
    ];
    for (a, m, b) in cases {
        let x = randn(&mut r, a);
        let y = randn(&mut r, b);
        // Nonzero entries other than 1 count as true.
        let mask: Vec<f64> = (0..m.iter().product::<usize>())
            .map(|_| [0.0, 1.0, -2.5][r.random_range(0..3)])
            .collect();
        let mask = Tensor::from_vec(mask, m);
        check(
            "where_mask",
            &|v| v[0].where_mask(&mask, &v[1]).silu(),
            &[x, y],
            2,
        );
    }
}

#[test]
fn clamp_away_from_the_bounds_to_second_order() {
    let mut r = rng(26);
    let (lo, hi) = (-0.5, 0.7);
    for rank in 0..=3 {
        let dims = random_dims(&mut r, rank, 4);
        // Keep every element at least 0.05 from either bound, where the derivative jumps.
        let x = uniform(&mut r, &dims, -1.5, 1.5);
        let away: Vec<f64> = x
            .to_f64s()
            .into_iter()
            .map(|v| {
                if (v - lo).abs() < 0.05 || (v - hi).abs() < 0.05 {
                    v + 0.1
                } else {
                    v
                }
            })
            .collect();
        let x = Tensor::from_vec(away, dims.clone());
        check("clamp", &|v| (&v[0].clamp(lo, hi) * &v[0]).silu(), &[x], 2);
    }
}

#[test]
fn gather_and_scatter_add_match_hand_computed_values() {
    let x = Tensor::<f64>::from_f64s(&[1., 2., 3., 4., 5., 6.], [2, 3]);
    let rows = x.gather(1, &[2, 0, 1, 1], [2, 2]);
    assert_eq!(rows.data(), &[3., 1., 5., 5.]);
    let cols = x.gather(0, &[1, 0, 1], [1, 3]);
    assert_eq!(cols.data(), &[4., 2., 6.]);

    let src = Tensor::<f64>::from_f64s(&[1., 2., 3., 4.], [2, 2]);
    let scattered = src.scatter_add(1, &[0, 0, 2, 1], [2, 3]);
    assert_eq!(scattered.data(), &[3., 0., 0., 0., 4., 3.]);
    let scattered = src.scatter_add(-2, &[2, 0, 2, 2], [3, 2]);
    assert_eq!(scattered.data(), &[0., 2., 0., 0., 4., 4.]);
}

#[test]
fn index_select_repeats_and_index_add_accumulates() {
    let x = Tensor::<f64>::from_f64s(&[1., 2., 3., 4., 5., 6.], [3, 2]);
    let picked = x.index_select(0, &[2, 0, 2]);
    assert_eq!(picked.dims(), &[3, 2]);
    assert_eq!(picked.data(), &[5., 6., 1., 2., 5., 6.]);
    let picked = x.index_select(-1, &[1, 1, 0]);
    assert_eq!(picked.data(), &[2., 2., 1., 4., 4., 3., 6., 6., 5.]);

    let added = x.index_add(0, &[1, 1, 3], 4);
    assert_eq!(added.data(), &[0., 0., 4., 6., 0., 0., 5., 6.]);
}

#[test]
fn concat_then_narrow_gives_the_pieces_back() {
    let mut r = rng(27);
    for axis in 0..3 {
        let pieces: Vec<Tensor<f64>> = [1, 3, 2]
            .iter()
            .map(|&e| randn(&mut r, &with_extent(&[2, 2, 2], axis, e)))
            .collect();
        let joined = Tensor::concat(&pieces, axis as isize);
        assert_eq!(joined.dims()[axis], 6);
        let mut start = 0;
        for p in &pieces {
            let len = p.dims()[axis];
            let back = joined.narrow(axis as isize, start, len);
            assert_eq!(back.shape(), p.shape());
            assert_eq!(back.data(), p.data());
            start += len;
        }
    }
}

#[test]
fn concat_of_many_pieces_keeps_their_order() {
    // Eleven pieces of varied extents: the pieces are joined in halves, so odd splits matter.
    let extents = [1, 2, 1, 3, 1, 1, 2, 1, 1, 2, 1];
    let mut next = 0.0;
    let pieces: Vec<Tensor<f64>> = extents
        .iter()
        .map(|&e| {
            let values: Vec<f64> = (0..e)
                .map(|_| {
                    next += 1.0;
                    next
                })
                .collect();
            Tensor::from_vec(values, [1, e])
        })
        .collect();
    let joined = Tensor::concat(&pieces, 1);
    let expected: Vec<f64> = (1..=16).map(f64::from).collect();
    assert_eq!(joined.data(), expected);
    check(
        "concat of many",
        &|v| Tensor::concat(v, 1).silu(),
        &pieces,
        2,
    );
}

#[test]
fn stack_puts_each_tensor_at_its_index() {
    let a = Tensor::<f64>::from_f64s(&[1., 2., 3.], [3]);
    let b = Tensor::<f64>::from_f64s(&[4., 5., 6.], [3]);
    let rows = Tensor::stack(&[a.clone(), b.clone()], 0);
    assert_eq!(rows.dims(), &[2, 3]);
    assert_eq!(rows.data(), &[1., 2., 3., 4., 5., 6.]);
    let cols = Tensor::stack(&[a, b], 1);
    assert_eq!(cols.dims(), &[3, 2]);
    assert_eq!(cols.data(), &[1., 4., 2., 5., 3., 6.]);
}

#[test]
fn pad_axis_embeds_in_zeros() {
    let x = Tensor::<f64>::from_f64s(&[1., 2., 3., 4.], [2, 2]);
    let padded = x.pad_axis(1, 1, 4);
    assert_eq!(padded.data(), &[0., 1., 2., 0., 0., 3., 4., 0.]);
    assert_eq!(padded.narrow(1, 1, 2).data(), x.data());
}

#[test]
fn where_mask_broadcasts_and_treats_nonzero_as_true() {
    let x = Tensor::<f64>::from_f64s(&[1., 2.], [2, 1]);
    let y = Tensor::<f64>::from_f64s(&[10., 20., 30.], [3]);
    let mask = Tensor::<f64>::from_f64s(&[1., 0., -3.], [3]);
    let out = x.where_mask(&mask, &y);
    assert_eq!(out.dims(), &[2, 3]);
    assert_eq!(out.data(), &[1., 20., 1., 2., 20., 2.]);
}

#[test]
fn clamp_values_and_nan() {
    let x = Tensor::<f64>::from_f64s(&[-2., -0.5, 0.3, 0.7, 5., f64::NAN], [6]);
    let out = x.clamp(-0.5, 0.7).to_f64s();
    assert_eq!(&out[..5], &[-0.5, -0.5, 0.3, 0.7, 0.7]);
    assert!(out[5].is_nan());
}

#[test]
fn backward_pairs_are_adjoint() {
    let mut r = rng(28);
    let x = randn(&mut r, &[3, 5, 2]);

    let y = randn(&mut r, &[3, 2, 2]);
    let lhs = inner(&x.narrow(1, 2, 2), &y);
    assert!((lhs - inner(&x, &y.pad_axis(1, 2, 5))).abs() < 1e-12);

    let indices = [4, 0, 4, 1];
    let y = randn(&mut r, &[3, 4, 2]);
    let lhs = inner(&x.index_select(1, &indices), &y);
    assert!((lhs - inner(&x, &y.index_add(1, &indices, 5))).abs() < 1e-12);

    let index = random_indices(&mut r, 3 * 4 * 2, 5);
    let lhs = inner(&x.gather(1, &index, [3, 4, 2]), &y);
    assert!((lhs - inner(&x, &y.scatter_add(1, &index, [3, 5, 2]))).abs() < 1e-12);
}

#[test]
#[should_panic(expected = "index_select: index 3 is out of range")]
fn index_select_rejects_an_index_out_of_range() {
    Tensor::<f64>::zeros([2, 3]).index_select(0, &[0, 3]);
}

#[test]
#[should_panic(expected = "gather: index 2 is out of range")]
fn gather_rejects_an_index_out_of_range() {
    Tensor::<f64>::zeros([2, 2]).gather(1, &[0, 2, 1, 1], [2, 2]);
}

#[test]
#[should_panic(expected = "concat: shapes")]
fn concat_rejects_pieces_that_differ_off_the_axis() {
    Tensor::concat(&[Tensor::<f64>::zeros([2, 3]), Tensor::zeros([3, 3])], 1);
}

#[test]
#[should_panic(expected = "concat: shapes [3] and [2, 3] differ off axis 1")]
fn concat_rejects_pieces_of_another_rank() {
    Tensor::concat(&[Tensor::<f64>::zeros([2, 3]), Tensor::zeros([3])], 1);
}

#[test]
#[should_panic(expected = "scatter_add: source [3] and index [2, 2] ranks differ")]
fn scatter_add_rejects_a_target_of_another_rank() {
    Tensor::<f64>::zeros([2, 2]).scatter_add(1, &[0, 1, 2, 0], [3]);
}
