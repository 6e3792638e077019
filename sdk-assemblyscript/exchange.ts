// The `exchange` host functions as plain calls, for a plugin that reads the exchange without
// the Request/Response views (which call these same functions):
//   import * as exchange from "@weir/sdk-assemblyscript/exchange";
//   const ua = exchange.requestHeader("user-agent");
// Outside a hook (configure, onTick) every function answers empty: "", 0, null or [].
export {
  exchangeRequestMethod as requestMethod,
  exchangeRequestScheme as requestScheme,
  exchangeRequestAuthority as requestAuthority,
  exchangeRequestPath as requestPath,
  exchangeRequestQuery as requestQuery,
  exchangeRequestHeader as requestHeader,
  exchangeRequestHeaderValues as requestHeaderValues,
  exchangeRequestHeaders as requestHeaders,
  exchangeClientAddress as clientAddress,
  exchangeClientPort as clientPort,
  exchangeRouteName as routeName,
  exchangeHttpVersion as httpVersion,
  exchangeRequestProperty as requestProperty,
  exchangeRequestProperties as requestProperties,
  exchangeResponseStatus as responseStatus,
  exchangeResponseHeader as responseHeader,
  exchangeResponseHeaderValues as responseHeaderValues,
  exchangeResponseHeaders as responseHeaders,
} from "./assembly/generated/abi";
