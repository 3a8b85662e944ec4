// Starts GraphiQL on the page that GET /graphql serves to browsers (src/http/graphiql.rs).
// Loaded after the React, ReactDOM and GraphiQL UMD builds, which define the globals
// `React`, `ReactDOM` and `GraphiQL`. No inline script: the page's CSP allows 'self' only.
(function () {
  'use strict';

  var loc = window.location;
  var url = loc.origin + '/graphql';
  var subscriptionUrl = (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/graphql/ws';

  // Sends the session cookie with every request.
  function fetchWithCredentials(input, init) {
    return window.fetch(input, Object.assign({}, init, { credentials: 'include' }));
  }

  var fetcher;
  if (typeof GraphiQL.createFetcher === 'function') {
    // @graphiql/toolkit's createGraphiQLFetcher, as the UMD build exposes it: HTTP for
    // queries and mutations, graphql-transport-ws for subscriptions.
    fetcher = GraphiQL.createFetcher({
      url: url,
      subscriptionUrl: subscriptionUrl,
      fetch: fetchWithCredentials,
      enableIncrementalDelivery: false,
    });
  } else {
    // Queries and mutations only.
    fetcher = function (params, options) {
      var headers = Object.assign(
        { 'Content-Type': 'application/json', Accept: 'application/json' },
        options && options.headers
      );
      return fetchWithCredentials(url, {
        method: 'POST',
        headers: headers,
        body: JSON.stringify(params),
      }).then(function (response) {
        return response.json();
      });
    };
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, { fetcher: fetcher })
  );
})();
