%%% Faults the Consul and Nomad test servers inject into their answers.
-module(caravan_test_faults).

-export([apply/2]).

%% {status, Code, Body}  that status and body
%% close                 close the connection without answering
%% {stall, Ms}           answer nothing for Ms, then close
%% {body, Bin}           200 with this body (garbage, truncated JSON...)
%% {big, Bytes}          200 with a body of Bytes bytes
-spec apply(term(), pid()) -> {pos_integer(), list(), iodata()} | close | {stall, non_neg_integer()}.
apply({status, Code, Body}, _) -> {Code, [], Body};
apply(close, _) -> close;
apply({stall, Ms}, _) -> {stall, Ms};
apply({body, Bin}, _) -> {200, [{<<"X-Consul-Index">>, <<"7">>}], Bin};
apply({big, Bytes}, _) ->
    Chunk = binary:copy(<<"[1,2,3,4,5,6,7]">>, 1000),
    {200, [], [<<"[">>, lists:duplicate(Bytes div byte_size(Chunk), [Chunk, $,]), <<"[]]">>]}.
