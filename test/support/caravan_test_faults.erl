%%% Faults the Consul and Nomad test servers inject into their answers.
-module(caravan_test_faults).

-export([apply/3]).

%% {status, Code, Body}  that status and body
%% close                 close the connection without answering
%% {stall, Ms}           answer nothing for Ms, then close
%% {body, Bin}           200 with this body (garbage, truncated JSON...)
%% {big, Bytes}          200 with a body of Bytes bytes, one JSON array
%% {echo_token, Code, At} that status, the request's token echoed in the body
%%                       after At bytes and again at its end, as a gateway
%%                       that quotes the request in its error page would:
%%                       the client must never let it through
%% {headers, Hs, Body}   200 with these extra headers and this body
%% {body_then_stall, Bin, Ms}
%%                       200 announcing 1 MB more than Bin, Bin, then
%%                       nothing for Ms, then close
-spec apply(term(), pid(), binary() | undefined) ->
          {pos_integer(), list(), iodata()} | close | {stall, non_neg_integer()}
          | {partial, pos_integer(), list(), iodata(), non_neg_integer(), non_neg_integer()}.
apply({status, Code, Body}, _, _) -> {Code, [], Body};
apply(close, _, _) -> close;
apply({stall, Ms}, _, _) -> {stall, Ms};
apply({body, Bin}, _, _) -> {200, [{<<"X-Consul-Index">>, <<"7">>}], Bin};
apply({echo_token, Code, At}, _, Token) ->
    T = case Token of undefined -> <<>>; _ -> Token end,
    {Code, [], [binary:copy(<<".">>, At), T, <<" may not read this; token ">>, T]};
apply({headers, Hs, Body}, _, _) -> {200, Hs, Body};
apply({body_then_stall, Bin, Ms}, _, _) ->
    {partial, 200, [{<<"X-Consul-Index">>, <<"7">>}], Bin, iolist_size(Bin) + 1000000, Ms};
apply({big, Bytes}, _, _) ->
    %% Valid JSON throughout (the client reads it as it arrives, so a fault
    %% early in it would be answered before the size limit is reached).
    Chunk = binary:copy(<<"[1,2,3,4,5,6,7],">>, 1000),
    {200, [], [<<"[">>, lists:duplicate(Bytes div byte_size(Chunk), Chunk), <<"[]]">>]}.
