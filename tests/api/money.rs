use crate::helpers::spawn_app;
use serde_json::json;

#[tokio::test]
async fn decimal_18_8_extremes_round_trip_exactly() {
    let app = spawn_app().await;
    for (to, value) in [
        ("AAA", "9999999999.99999999"),
        ("BBB", "0.00000001"),
        ("CCC", "1234567.89012345"),
    ] {
        app.set_rate("USD", to, value).await;
        // Once from the database (cache cold), once from the cache.
        for _ in 0..2 {
            let body = app
                .gql(
                    "query($to: String!) { exchangeRate(from: \"USD\", to: $to) { rate } }",
                    json!({ "to": to }),
                )
                .await;
            let expected = format!("{value:0<width$}", width = value.find('.').unwrap() + 9);
            assert_eq!(body["data"]["exchangeRate"]["rate"], expected, "{body}");
        }
        let body = app
            .gql(
                "query($to: String!) { rateHistory(from: \"USD\", to: $to) { rate } }",
                json!({ "to": to }),
            )
            .await;
        let got: rust_decimal::Decimal = body["data"]["rateHistory"][0]["rate"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(got, value.parse::<rust_decimal::Decimal>().unwrap());
    }
}
