%%% A minimal HTTP/1.1 server for the Consul and Nomad test servers, over
%%% TCP, TLS (ssl) or a unix socket. Each connection runs in its own process
%%% and may serve several requests (libcurl reuses connections); the handler
%%% runs in that process, so it may block, as a blocking query does.
%%%
%%% Handler(Request) -> {Status, Headers, Body} | close | {stall, Ms}
%%%                     | {partial, Status, Headers, Sent, Claimed, Ms}
%%%   partial: headers announcing a body of Claimed bytes, Sent of it, then
%%%   nothing for Ms, then close (a server that stalls mid-body).
%%%   Request = #{method, path, query => #{binary() => binary()},
%%%               headers => #{lowercase binary() => binary()},
%%%               body => binary()}   (Content-Length bytes; <<>> without one)
-module(caravan_test_http).

-export([start/2]).
-export([stop/1]).
-export([url/1]).
-export([duration_ms/1]).

-type handler() :: fun((map()) -> {pos_integer(), [{binary(), iodata()}], iodata()}
                                  | close | {stall, non_neg_integer()}
                                  | {partial, pos_integer(), [{binary(), iodata()}], iodata(),
                                     non_neg_integer(), non_neg_integer()}).

%% @doc Options: transport => tcp (default) | ssl | unix; ssl => [ssl options];
%% path => socket path for unix; port => fixed port (default: any free).
-spec start(handler(), map()) -> map().
start(Handler, Options) ->
    Transport = maps:get(transport, Options, tcp),
    Self = self(),
    Pid = spawn(fun() -> listen(Self, Handler, Transport, Options) end),
    receive
        {Pid, listening, Where} -> #{pid => Pid, transport => Transport, where => Where}
    after 5000 -> error(http_server_not_started)
    end.

-spec stop(map()) -> ok.
stop(#{pid := Pid}) ->
    Ref = monitor(process, Pid),
    exit(Pid, kill),
    receive {'DOWN', Ref, _, _, _} -> ok end.

%% @doc The base URL clients use.
-spec url(map()) -> string().
url(#{transport := unix, where := Path}) -> "unix://" ++ Path;
url(#{transport := ssl, where := Port}) -> "https://127.0.0.1:" ++ integer_to_list(Port);
url(#{transport := tcp, where := Port}) -> "http://127.0.0.1:" ++ integer_to_list(Port).

listen(Parent, Handler, Transport, Options) ->
    process_flag(trap_exit, true),
    Common = [binary, {packet, http_bin}, {active, false}, {reuseaddr, true}],
    {Listen, Where} =
        case Transport of
            tcp ->
                {ok, L} = gen_tcp:listen(maps:get(port, Options, 0),
                                         [{ip, maps:get(ip, Options, {127, 0, 0, 1})} | Common]),
                {ok, P} = inet:port(L),
                {{gen_tcp, L}, P};
            unix ->
                Path = maps:get(path, Options),
                _ = file:delete(Path),
                {ok, L} = gen_tcp:listen(0, [{ifaddr, {local, Path}} | Common -- [{reuseaddr, true}]]),
                {{gen_tcp, L}, Path};
            ssl ->
                {ok, L} = ssl:listen(maps:get(port, Options, 0),
                                     [{ip, {127, 0, 0, 1}} | Common] ++ maps:get(ssl, Options)),
                {ok, {_, P}} = ssl:sockname(L),
                {{ssl, L}, P}
        end,
    Parent ! {self(), listening, Where},
    accept_loop(Listen, Handler).

accept_loop({Mod, L} = Listen, Handler) ->
    case accept(Mod, L) of
        {ok, Sock} ->
            Pid = spawn_link(fun() -> receive {go, S} -> serve(Mod, S, Handler) end end),
            ok = controlling_process(Mod, Sock, Pid),
            Pid ! {go, Sock};
        {error, _} ->
            ok
    end,
    accept_loop(Listen, Handler).

accept(gen_tcp, L) -> gen_tcp:accept(L);
accept(ssl, L) ->
    case ssl:transport_accept(L) of
        {ok, T} -> ssl:handshake(T, 5000);
        Error -> Error
    end.

controlling_process(gen_tcp, S, P) -> gen_tcp:controlling_process(S, P);
controlling_process(ssl, S, P) -> ssl:controlling_process(S, P).

setopts(gen_tcp, S, O) -> inet:setopts(S, O);
setopts(ssl, S, O) -> ssl:setopts(S, O).

serve(Mod, S, Handler) ->
    case read_request(Mod, S) of
        {ok, Request} ->
            case Handler(Request) of
                close ->
                    Mod:close(S);
                {stall, Ms} ->
                    timer:sleep(Ms),
                    Mod:close(S);
                {partial, Status, Headers, Sent, Claimed, Ms} ->
                    _ = Mod:send(S, [head(Status, Headers, Claimed), Sent]),
                    timer:sleep(Ms),
                    Mod:close(S);
                {Status, Headers, Body} ->
                    Head = head(Status, Headers, iolist_size(Body)),
                    case Mod:send(S, [Head, Body]) of
                        ok -> serve(Mod, S, Handler);
                        {error, _} -> Mod:close(S)
                    end
            end;
        {error, _} ->
            Mod:close(S)
    end.

head(Status, Headers, Len) ->
    [<<"HTTP/1.1 ">>, integer_to_binary(Status), <<" ">>, reason(Status),
     <<"\r\nContent-Type: application/json\r\nContent-Length: ">>,
     integer_to_binary(Len), <<"\r\n">>,
     [[K, <<": ">>, V, <<"\r\n">>] || {K, V} <- Headers], <<"\r\n">>].

read_request(Mod, S) ->
    case Mod:recv(S, 0, 600000) of
        {ok, {http_request, Method, {abs_path, Full}, _}} ->
            {Path, Query} = split_query(Full),
            read_headers(Mod, S, #{method => Method, path => Path, query => Query,
                                   headers => #{}});
        {ok, Other} -> {error, {unexpected, Other}};
        {error, _} = E -> E
    end.

read_headers(Mod, S, Req = #{headers := H}) ->
    ok = setopts(Mod, S, [{packet, httph_bin}]),
    case Mod:recv(S, 0, 10000) of
        {ok, {http_header, _, Name, _, Value}} ->
            Key = string:lowercase(if is_atom(Name) -> atom_to_binary(Name); true -> Name end),
            read_headers(Mod, S, Req#{headers := H#{Key => Value}});
        {ok, http_eoh} ->
            read_body(Mod, S, Req);
        {error, _} = E -> E
    end.

%% A PUT's body (the agent registration's JSON), at most 1 MiB.
read_body(Mod, S, Req = #{headers := H}) ->
    Len = binary_to_integer(maps:get(<<"content-length">>, H, <<"0">>)),
    Body = case Len of
               0 -> {ok, <<>>};
               _ when Len =< 1048576 ->
                   ok = setopts(Mod, S, [{packet, raw}]),
                   Mod:recv(S, Len, 10000);
               _ -> {error, too_large}
           end,
    case Body of
        {ok, B} ->
            ok = setopts(Mod, S, [{packet, http_bin}]),
            {ok, Req#{body => B}};
        {error, _} = E ->
            E
    end.

split_query(Full) ->
    case binary:split(Full, <<"?">>) of
        [Path] -> {Path, #{}};
        [Path, Q] ->
            {Path, maps:from_list([case binary:split(KV, <<"=">>) of
                                       [K, V] -> {K, uri_string:percent_decode(V)};
                                       [K] -> {K, <<>>}
                                   end || KV <- binary:split(Q, <<"&">>, [global]), KV =/= <<>>])}
    end.

reason(200) -> <<"OK">>;
reason(403) -> <<"Forbidden">>;
reason(404) -> <<"Not Found">>;
reason(400) -> <<"Bad Request">>;
reason(401) -> <<"Unauthorized">>;
reason(500) -> <<"Internal Server Error">>;
reason(_) -> <<"Status">>.

%% @doc A Go duration as Consul and Nomad take `wait': "10s", "5m", "1500ms".
-spec duration_ms(binary()) -> non_neg_integer().
duration_ms(W) ->
    {match, [N, Unit]} = re:run(W, <<"^([0-9]+)(ms|s|m)$">>, [{capture, all_but_first, binary}]),
    binary_to_integer(N) * case Unit of <<"ms">> -> 1; <<"s">> -> 1000; <<"m">> -> 60000 end.
