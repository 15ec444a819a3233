//! The stand-in speaks the API the way ../shared/alpaca-api.md describes: both endpoint
//! forms, shared paging across symbols, auth, limits, tokens and error shapes.

use crate::common::*;
use serde_json::Value;

async fn get(url: &str, auth: bool) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if auth {
        req = req
            .header("APCA-API-KEY-ID", "k")
            .header("APCA-API-SECRET-KEY", "s");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_symbol_pages_share_one_budget_in_symbol_then_time_order() {
    let s = standin(small(100)).await;
    let base = format!(
        "{}/v2/stocks/quotes?symbols=MSFT,AAPL&start=2024-01-02T09:00:00Z&end=2024-01-03T01:00:00Z&limit=70",
        s.url()
    );
    let (mut seen, mut token, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let url = match &token {
            Some(t) => format!("{base}&page_token={t}"),
            None => base.clone(),
        };
        let (status, body) = get(&url, true).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        let quotes = body["quotes"].as_object().unwrap();
        let n: usize = quotes.values().map(|v| v.as_array().unwrap().len()).sum();
        assert!(n <= 70);
        for (sym, arr) in quotes {
            for q in arr.as_array().unwrap() {
                seen.push((sym.clone(), q["t"].as_str().unwrap().to_string()));
            }
        }
        match body["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => {
                assert!(body["next_page_token"].is_null());
                break;
            }
        }
    }
    assert_eq!(seen.len(), 200);
    assert_eq!(pages, 3);
    assert!(seen[..100].iter().all(|(s, _)| s == "AAPL"));
    assert!(seen[100..].iter().all(|(s, _)| s == "MSFT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_symbol_form_empty_results_and_errors() {
    let s = standin(small(50)).await;
    let u = s.url();
    let (status, body) = get(
        &format!("{u}/v2/stocks/AAPL/quotes?start=2024-01-02T09:00:00Z&end=2024-01-03T01:00:00Z"),
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["symbol"], "AAPL");
    assert_eq!(body["quotes"].as_array().unwrap().len(), 50);
    assert!(body["next_page_token"].is_null());
    // A weekend: an empty array on the single form, an empty map on the multi form.
    let (_, body) = get(
        &format!("{u}/v2/stocks/AAPL/quotes?start=2024-01-06T06:00:00Z&end=2024-01-07T23:00:00Z"),
        true,
    )
    .await;
    assert_eq!(body["quotes"], serde_json::json!([]));
    let (_, body) = get(
        &format!(
            "{u}/v2/stocks/quotes?symbols=AAPL&start=2024-01-06T06:00:00Z&end=2024-01-07T23:00:00Z"
        ),
        true,
    )
    .await;
    assert_eq!(
        body,
        serde_json::json!({"quotes": {}, "next_page_token": null})
    );

    let (status, body) = get(
        &format!("{u}/v2/stocks/quotes?symbols=AAPL&start=2024-01-02"),
        false,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("request is not authorized"))
    );
    let (status, body) = get(
        &format!("{u}/v2/stocks/quotes?symbols=AAPL&start=2024-01-02&limit=10001"),
        true,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], 42210000);
    // A parameter the endpoint does not take is refused, as Alpaca does.
    for (path, param) in [("quotes", "timeframe=1Min"), ("bars", "loc=us")] {
        let (status, body) = get(
            &format!("{u}/v2/stocks/{path}?symbols=AAPL&start=2024-01-02&timeframe=1Day&{param}"),
            true,
        )
        .await;
        let name = param.split('=').next().unwrap();
        assert_eq!(
            (status, body["message"].as_str()),
            (400, Some(format!("unexpected parameter: {name}").as_str()))
        );
    }
    let (status, body) = get(
        &format!("{u}/v2/stocks/quotes?symbols=AAPL&start=2024-01-02&page_token=abcd"),
        true,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("invalid page token"))
    );
    // A token is only valid with the parameters it came from.
    let (_, body) = get(
        &format!("{u}/v2/stocks/quotes?symbols=AAPL&start=2024-01-02&end=2024-01-02&limit=10"),
        true,
    )
    .await;
    let t = body["next_page_token"].as_str().unwrap();
    let (status, _) = get(
        &format!(
            "{u}/v2/stocks/quotes?symbols=MSFT&start=2024-01-02&end=2024-01-02&page_token={t}"
        ),
        true,
    )
    .await;
    assert_eq!(status, 400);
}
