// Starts GraphiQL on the page that GET /graphql serves to browsers (src/http/graphiql.rs).
// Loaded after the React, ReactDOM and GraphiQL UMD builds, which define the globals
// `React`, `ReactDOM` and `GraphiQL`. No inline script: the page's CSP allows 'self' only.
(function () {
  'use strict';

  var loc = window.location;
  var url = loc.origin + '/graphql';
  var subscriptionUrl = (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/graphql/ws';

  // The server's depth limit (GRAPHQL_MAX_DEPTH, 12 by default) counts introspection too, and
  // the query GraphiQL would send (graphql-js's getIntrospectionQuery) nests type references
  // deeper than that, so the server refuses it and the documentation explorer stays empty.
  // This one asks for the same things with type references six wrappers deep (enough for
  // [[T!]!]!), which keeps it at depth 12.
  var TYPE_REF = 'kind name';
  for (var i = 0; i < 6; i++) TYPE_REF = 'kind name ofType { ' + TYPE_REF + ' }';
  var INTROSPECTION_QUERY =
    'query IntrospectionQuery { __schema {' +
    ' queryType { name kind } mutationType { name kind } subscriptionType { name kind }' +
    ' types { ...FullType }' +
    ' directives { name description locations args { ...InputValue } } } }' +
    ' fragment FullType on __Type { kind name description' +
    ' fields(includeDeprecated: true) { name description args { ...InputValue }' +
    ' type { ...TypeRef } isDeprecated deprecationReason }' +
    ' inputFields { ...InputValue } interfaces { ...TypeRef }' +
    ' enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }' +
    ' possibleTypes { ...TypeRef } }' +
    ' fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }' +
    ' fragment TypeRef on __Type { ' + TYPE_REF + ' }';

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

  function fetchWithShallowIntrospection(params, options) {
    if (params && params.operationName === 'IntrospectionQuery') {
      params = Object.assign({}, params, { query: INTROSPECTION_QUERY });
    }
    return fetcher(params, options);
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, { fetcher: fetchWithShallowIntrospection })
  );
})();
