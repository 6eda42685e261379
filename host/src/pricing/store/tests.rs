use super::*;
use crate::db::testing::{Backend, TestDb, on_both_backends};
use crate::placement::Arch;

fn offer(instance_type: &str, region: &str, hourly: f64) -> Offer {
    Offer {
        provider: "aws".into(),
        instance_type: instance_type.into(),
        region: region.into(),
        zone: None,
        vcpus: 2.0,
        memory_gib: 8.0,
        storage_gib: None,
        gpus: 0.0,
        gpu_model: None,
        gpu_memory_gib: None,
        arch: Arch::X86_64,
        hourly_usd: hourly,
        spot_hourly_usd: None,
        shared_cpu: false,
        confidential: false,
        promotional: false,
        fractional_gpu: false,
        operator_owned: false,
        source: "https://instances.vantage.sh/instances.json".into(),
        observed_at: 1_759_276_800,
        from_snapshot: false,
    }
}

fn store(backend: Backend) -> (TestDb, CatalogueStore) {
    let tdb = TestDb::new(backend);
    let store = CatalogueStore::new(tdb.db());
    (tdb, store)
}

fn put(store: &CatalogueStore, offers: &[Offer]) -> Encoded {
    let mut e = Encoder::new();
    for o in offers {
        e.push(o);
    }
    let encoded = e.finish();
    let drops = Drops {
        count: 1,
        first: vec![("aws/x in y".into(), "price 0 $/h is not positive".into())],
    };
    store
        .put(
            "aws",
            1_800_000_000,
            offers.len() + 1,
            &drops,
            "bounds",
            &encoded,
        )
        .unwrap();
    encoded
}

fn varied() -> Vec<Offer> {
    let mut a = offer("g5.xlarge", "us-east-1", 1.006);
    a.zone = Some("us-east-1a".into());
    a.gpus = 1.0;
    a.gpu_model = Some("NVIDIA A10G".into());
    a.gpu_memory_gib = Some(24.0);
    a.storage_gib = Some(232.8);
    a.spot_hourly_usd = Some(0.41);
    let mut b = offer("m7g.large", "eu-west-1", 0.0816);
    b.arch = Arch::Arm64;
    b.shared_cpu = true;
    b.confidential = true;
    b.promotional = true;
    b.fractional_gpu = true;
    b.operator_owned = true;
    b.source = "snapshot:aws-libcloud-2025-03-02".into();
    b.from_snapshot = true;
    b.observed_at = 1_740_936_978;
    vec![a, b, offer("m5.large", "us-east-1", 0.096)]
}

on_both_backends! {
    fn a_stored_catalogue_reads_back_every_field_of_every_offer(backend) {
        let (_dir, store) = store(backend);
        let offers = varied();
        put(&store, &offers);
        let loaded = store.load("aws", |_| true).unwrap().unwrap();
        assert!(loaded.complete);
        let mut back: Vec<Offer> = loaded.rows().map(|r| loaded.offer(&r)).collect();
        let mut expected = offers.clone();
        back.sort_by(crate::placement::identity_cmp);
        expected.sort_by(crate::placement::identity_cmp);
        assert_eq!(back, expected);
        let meta = &loaded.meta;
        assert_eq!(
            (meta.fetched_at, meta.listed, meta.offers),
            (1_800_000_000, 4, 3)
        );
        assert_eq!(meta.drops.count, 1);
        assert_eq!(meta.normalized_with, "bounds");
        // Provenance is stored once per source, not per offer.
        assert_eq!(meta.sources.len(), 2);
        assert_eq!(meta.observed_at(), Some(1_740_936_978));
        assert!(!meta.from_snapshot());
    }
}

on_both_backends! {
    fn only_the_regions_asked_for_are_read(backend) {
        let (_dir, store) = store(backend);
        put(&store, &varied());
        let loaded = store.load("aws", |r| r == "us-east-1").unwrap().unwrap();
        assert!(!loaded.complete);
        assert_eq!(loaded.regions().collect::<Vec<_>>(), ["us-east-1"]);
        assert_eq!(loaded.rows().count(), 2);
        assert!(store.load("gcp", |_| true).unwrap().is_none());
    }
}

#[test]
fn machines_sold_in_many_regions_are_stored_once() {
    let offers: Vec<Offer> = (0..25)
        .flat_map(|t| {
            (0..10).map(move |r| offer(&format!("m{t}.large"), &format!("region-{r}"), 0.1))
        })
        .collect();
    let mut e = Encoder::new();
    for o in &offers {
        e.push(o);
    }
    let encoded = e.finish();
    assert_eq!(encoded.offers(), 250);
    // 25 machines of 32 bytes and their names, then 28 bytes per offer.
    assert!(encoded.shapes.len() < 25 * (format::SHAPE_BYTES + 16) + 16);
    let rows: usize = encoded.regions.values().map(|(_, b)| b.len()).sum();
    assert_eq!(rows, 250 * format::ROW_BYTES);
    assert_eq!(encoded.sources().len(), 1);
}

on_both_backends! {
    fn a_new_catalogue_replaces_the_old_one_whole(backend) {
        let (_dir, store) = store(backend);
        put(&store, &varied());
        put(&store, &[offer("c7i.large", "ap-south-1", 0.09)]);
        let loaded = store.load("aws", |_| true).unwrap().unwrap();
        assert_eq!(loaded.regions().collect::<Vec<_>>(), ["ap-south-1"]);
        assert_eq!(loaded.rows().count(), 1);
    }
}

on_both_backends! {
    fn a_damaged_or_foreign_catalogue_is_treated_as_absent(backend) {
        let (_dir, store) = store(backend);
        put(&store, &varied());
        store
            .db
            .execute(
                "UPDATE price_rows SET rows = ?1 WHERE region = 'eu-west-1'",
                crate::db::params![vec![1u8, 2]],
            )
            .unwrap();
        assert!(store.load("aws", |_| true).unwrap().is_none());
        // Regions not read are not checked.
        assert!(store.load("aws", |r| r == "us-east-1").unwrap().is_some());

        put(&store, &varied());
        store
            .db
            .execute("UPDATE price_catalogue SET format = 99", &[])
            .unwrap();
        assert!(store.meta("aws").unwrap().is_none());
        assert!(store.load("aws", |_| true).unwrap().is_none());

        put(&store, &varied());
        store
            .db
            .execute(
                "UPDATE price_catalogue SET shapes = ?1",
                crate::db::params![vec![0xffu8; 4]],
            )
            .unwrap();
        assert!(store.load("aws", |_| true).unwrap().is_none());
    }
}

#[test]
fn row_ids_out_of_range_are_damage_not_a_panic() {
    let mut blob = Vec::new();
    format::encode_row(
        &mut blob,
        &format::Row {
            shape: 7,
            zone: 0,
            provenance: 0,
            hourly_usd: 1.0,
            spot_usd: f64::NAN,
        },
    );
    assert!(format::check_rows(&blob, 3, 1, 1).is_err());
    assert!(format::check_rows(&blob[..5], 8, 1, 1).is_err());
    assert!(format::check_rows(&blob, 8, 1, 1).is_ok());
    // A string count larger than the blob could hold.
    assert!(format::decode_shapes(&[0xff, 0xff, 0xff, 0x0f]).is_err());
}
