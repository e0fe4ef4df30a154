%%% A DNS responder for what no stock server does, on 127.0.0.1 (UDP and TCP
%%% on the same port):
%%%   {consul, N}    Consul's DNS interface with default settings: an SRV
%%%                  answer of N instances, targets' A records in ADDITIONAL;
%%%                  over plain UDP at most 3 answers and NO TC flag
%%%                  (Consul docs, "DNS interface": udp_answer_limit = 3,
%%%                  enable_truncate = false), over TCP all N.
%%%   no_additional  SRV answers without ADDITIONAL records; the targets'
%%%                  A records come only from A queries.
%%%   {no_additional, N}   the same with N targets.
%%%   silent         never answers (TCP connections are accepted and held).
%%%   garbage        answers random bytes (whose first two, the id, never
%%%                  match the query's).
%%%   truncated      a well-formed header and question, then an answer
%%%                  record cut short.
%%%   refused / servfail   that rcode.
%%%   {ipv6_only, N} N targets that have only AAAA records (fd00::I), and
%%%                  no ADDITIONAL section: an A query finds the name but
%%%                  no A record (NOERROR; empty for odd I, a CNAME to a name
%%%                  without addresses for even I), an AAAA query its address.
%%%   {dual, N}      N targets with A (127.0.2.I) and AAAA (fd00::I) records;
%%%                  only the A records are in ADDITIONAL (BIND and Consul
%%%                  add what they have of the target's addresses; this one
%%%                  holds back the AAAA to show which query asks for it).
%%%   {dual_additional, N}   N targets with AAAA (fd00::I) and A (127.0.2.I)
%%%                  records, both in ADDITIONAL, the AAAA first.
%%%   root_target    two SRV records: n1.node.dc1.consul and "." (RFC 2782:
%%%                  "service decidedly not available"), A in ADDITIONAL.
%%%   {slow, Ms, Mode}     as Mode, but SRV answers leave Ms later.
%%%   {tcp_only, Mode}     as Mode over TCP; UDP queries are never answered.
%%%   {gated, Mode}        as Mode, but SRV answers wait for open_gate/1.
%%%   {gated_a, Mode}      as Mode, but A answers wait for open_gate/1.
%%%   {drop_first_udp, Mode}   as Mode, but the first UDP query is never
%%%                  answered (a lost packet): only a resend gets an answer.
%%%   tc_empty       every answer has TC set and no records, over TCP too
%%%                  (BIND's answer to an RRset too large for one message).
%%%   aaaa_servfail  A questions get one A record (127.0.2.1), AAAA questions
%%%                  SERVFAIL: one family of a dual lookup fails.
%%%   {fresh, N}     a lying server: SRV answers of N targets whose A records
%%%                  (in ADDITIONAL) are addresses no earlier answer gave
%%%                  (127.3.0.1 upward), so every answer names N new nodes.
%%%   {hang_first_tcp, Mode}   as Mode, but the first TCP query is never
%%%                  answered (its connection stays open): a server stuck on
%%%                  one question; only a question asked again is answered.
%%%   {drop_first_a, Mode}     as Mode, but the first UDP query for an A
%%%                  record (a follow-up for an SRV target) is never
%%%                  answered; every other query is answered as Mode does.
%%% Every question is recorded: asked/1 lists them.
-module(caravan_test_dns_responder).

-include_lib("kernel/src/inet_dns.hrl").

-export([start/1]).
-export([stop/1]).
-export([server/1]).
-export([queries/1]).
-export([asked/1]).
-export([open_gate/1]).

-spec start(term()) -> {pid(), inet:port_number()}.
start(Mode) ->
    Self = self(),
    Pid = spawn(fun() -> init(Self, Mode) end),
    receive {Pid, ready, Port} -> {Pid, Port} after 5000 -> error(responder_not_ready) end.

-spec stop({pid(), inet:port_number()}) -> ok.
stop({Pid, _}) ->
    Ref = monitor(process, Pid),
    exit(Pid, kill),
    receive {'DOWN', Ref, _, _, _} -> ok end.

-spec server({pid(), inet:port_number()}) -> string().
server({_, Port}) -> "127.0.0.1:" ++ integer_to_list(Port).

%% @doc How many queries it has seen, by transport.
-spec queries({pid(), inet:port_number()}) -> #{udp := non_neg_integer(), tcp := non_neg_integer()}.
queries({Pid, _}) ->
    Pid ! {queries, self()},
    receive {Pid, counts, Counts} -> Counts after 5000 -> error(responder_stuck) end.

%% @doc Every question seen so far, oldest first, as {Type, Name}.
-spec asked({pid(), inet:port_number()}) -> [{atom(), string()}].
asked({Pid, _}) ->
    Pid ! {asked, self()},
    receive {Pid, asked, Asked} -> lists:reverse(Asked) after 5000 -> error(responder_stuck) end.

%% @doc Lets a gated responder's held SRV answers go, and later ones at once.
-spec open_gate({pid(), inet:port_number()}) -> ok.
open_gate({Pid, _}) ->
    Pid ! {open_gate, self()},
    receive {Pid, gate_open} -> ok after 5000 -> error(responder_stuck) end.

init(Parent, Mode) ->
    {ok, Listen} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}}, {packet, 2},
                                      {active, false}, {reuseaddr, true}]),
    {ok, Port} = inet:port(Listen),
    %% A receive buffer large enough for a burst of queries: the default one
    %% (a few dozen small datagrams here) dropped some of 64, which a real
    %% server's would not.
    {ok, Udp} = gen_udp:open(Port, [binary, {ip, {127, 0, 0, 1}}, {active, true},
                                    {recbuf, 1024 * 1024}]),
    Self = self(),
    spawn_link(fun() -> accept_loop(Self, Listen) end),
    Parent ! {self(), ready, Port},
    loop(#{mode => Mode, udp => Udp, counts => #{udp => 0, tcp => 0}, asked => [], held => []}).

loop(#{mode := Mode, udp := Udp, counts := Counts, asked := Asked} = S) ->
    receive
        {udp, Udp, _Ip, _Port, Packet} when element(1, Mode) =:= drop_first_udp ->
            loop(S#{mode := element(2, Mode),
                    counts := maps:update_with(udp, fun(N) -> N + 1 end, Counts),
                    asked := question(Packet) ++ Asked});
        {udp, Udp, Ip, Port, Packet} ->
            case {Mode, question(Packet)} of
                {{drop_first_a, Then}, [{a, _}]} ->
                    loop(S#{mode := Then,
                            counts := maps:update_with(udp, fun(N) -> N + 1 end, Counts),
                            asked := question(Packet) ++ Asked});
                _ ->
                    answer_udp(S, Ip, Port, Packet)
            end;
        {tcp_query, _From, Packet} when element(1, Mode) =:= hang_first_tcp ->
            loop(S#{mode := element(2, Mode),
                    counts := maps:update_with(tcp, fun(N) -> N + 1 end, Counts),
                    asked := question(Packet) ++ Asked});
        {tcp_query, From, Packet} ->
            later(Mode, Packet, fun() -> From ! {answer, answer(Mode, tcp, Packet)} end),
            loop(S#{counts := maps:update_with(tcp, fun(N) -> N + 1 end, Counts),
                    asked := question(Packet) ++ Asked});
        {queries, From} ->
            From ! {self(), counts, Counts},
            loop(S);
        {asked, From} ->
            From ! {self(), asked, Asked},
            loop(S);
        {hold, Send} ->
            loop(S#{held := [Send | maps:get(held, S)]});
        {open_gate, From} ->
            [Send() || Send <- lists:reverse(maps:get(held, S))],
            From ! {self(), gate_open},
            loop(S#{mode := opened(Mode), held := []})
    end.

answer_udp(#{mode := Mode, udp := Udp, counts := Counts, asked := Asked} = S, Ip, Port, Packet) ->
    later(Mode, Packet, fun() ->
                                case answer(Mode, udp, Packet) of
                                    {reply, Bin} -> gen_udp:send(Udp, Ip, Port, Bin);
                                    drop -> ok
                                end
                        end),
    loop(S#{counts := maps:update_with(udp, fun(N) -> N + 1 end, Counts),
            asked := question(Packet) ++ Asked}).

opened({gated, Mode}) -> Mode;
opened({gated_a, Mode}) -> Mode;
opened(Mode) -> Mode.

question(Packet) ->
    case inet_dns:decode(Packet) of
        {ok, #dns_rec{qdlist = [#dns_query{type = T, domain = D} | _]}} -> [{T, D}];
        _ -> []
    end.

accept_loop(Server, Listen) ->
    {ok, Sock} = gen_tcp:accept(Listen),
    %% Linked: stopping the responder closes its connections too.
    Pid = spawn_link(fun() -> receive go -> serve_tcp(Server, Sock) end end),
    %% A connection closed before it is handed over is simply dropped.
    case gen_tcp:controlling_process(Sock, Pid) of
        ok -> Pid ! go;
        {error, _} -> unlink(Pid), exit(Pid, kill), gen_tcp:close(Sock)
    end,
    accept_loop(Server, Listen).

%% Queries on one connection are answered as each answer is ready, not one
%% after the other: c-ares pipelines the queries of every lookup to a
%% server over one kept-open connection, as DNS servers allow (RFC 7766).
serve_tcp(Server, Sock) ->
    %% A client that has already gone (the CLI exits as soon as it has its
    %% answer) makes setopts fail; that ends this connection, never the
    %% responder this process is linked to.
    case inet:setopts(Sock, [{active, once}]) of
        ok -> serve_tcp_once(Server, Sock);
        {error, _} -> gen_tcp:close(Sock)
    end.

serve_tcp_once(Server, Sock) ->
    receive
        {tcp, Sock, Packet} ->
            Server ! {tcp_query, self(), Packet},
            serve_tcp(Server, Sock);
        {answer, {reply, Bin}} ->
            case gen_tcp:send(Sock, Bin) of
                ok -> serve_tcp(Server, Sock);
                {error, _} -> gen_tcp:close(Sock)
            end;
        {answer, drop} ->
            serve_tcp(Server, Sock);
        {tcp_closed, Sock} ->
            ok;
        {tcp_error, Sock, _} ->
            gen_tcp:close(Sock)
    end.

%% Runs Send now, or Ms later for a slow responder's SRV answers.
later({slow, Ms, _}, Packet, Send) ->
    case inet_dns:decode(Packet) of
        {ok, #dns_rec{qdlist = [#dns_query{type = srv} | _]}} ->
            spawn(fun() -> timer:sleep(Ms), Send() end);
        _ ->
            Send()
    end;
later({gated, _}, Packet, Send) ->
    case inet_dns:decode(Packet) of
        {ok, #dns_rec{qdlist = [#dns_query{type = srv} | _]}} -> self() ! {hold, Send};
        _ -> Send()
    end;
later({gated_a, _}, Packet, Send) ->
    case inet_dns:decode(Packet) of
        {ok, #dns_rec{qdlist = [#dns_query{type = a} | _]}} -> self() ! {hold, Send};
        _ -> Send()
    end;
later({drop_first_a, Mode}, Packet, Send) ->
    later(Mode, Packet, Send);
later({tcp_only, Mode}, Packet, Send) ->
    later(Mode, Packet, Send);
later(_, _, Send) ->
    Send().

answer({slow, _, Mode}, Transport, Packet) ->
    answer(Mode, Transport, Packet);
answer({gated, Mode}, Transport, Packet) ->
    answer(Mode, Transport, Packet);
answer({gated_a, Mode}, Transport, Packet) ->
    answer(Mode, Transport, Packet);
answer({drop_first_a, Mode}, Transport, Packet) ->
    answer(Mode, Transport, Packet);
answer({tcp_only, _}, udp, _) ->
    drop;
answer({tcp_only, Mode}, tcp, Packet) ->
    answer(Mode, tcp, Packet);
answer(silent, _, _) ->
    drop;
answer(garbage, _, <<Id:16, _/binary>>) ->
    %% Never the query's id, so the outcome is the same every run.
    {reply, <<((Id + 1) band 16#ffff):16, (crypto:strong_rand_bytes(62))/binary>>};
answer(garbage, _, _) ->
    drop;
answer(Mode, Transport, Packet) ->
    case inet_dns:decode(Packet) of
        {ok, #dns_rec{header = H, qdlist = [Q | _]}} -> respond(Mode, Transport, H, Q);
        _ -> drop
    end.

respond(refused, _, H, Q) -> {reply, encode(H, Q, [], [], 5)};
respond(servfail, _, H, Q) -> {reply, encode(H, Q, [], [], 2)};
respond(tc_empty, _, #dns_header{id = Id, rd = Rd, opcode = Op}, Q) ->
    Header = #dns_header{id = Id, qr = true, opcode = Op, aa = true, tc = true, rd = Rd,
                         rcode = 0},
    {reply, iolist_to_binary(inet_dns:encode(#dns_rec{header = Header, qdlist = [Q]}))};
respond(aaaa_servfail, _, H, #dns_query{type = aaaa} = Q) ->
    {reply, encode(H, Q, [], [], 2)};
respond(aaaa_servfail, _, H, #dns_query{type = a, domain = D} = Q) ->
    {reply, encode(H, Q, [a_rr(D, 1)], [], 0)};
respond(truncated, _, H, Q) ->
    Full = encode(H, Q, [srv_rr(Q, 1, "n1.node.dc1.consul")], [], 0),
    %% Cut inside the answer record: header and question stay intact.
    QLen = 12 + length(Q#dns_query.domain) + 2 + 4,
    {reply, binary:part(Full, 0, QLen + 8)};
respond({consul, N}, Transport, H, #dns_query{type = srv} = Q) ->
    Shown = case Transport of
                udp -> min(N, 3);
                tcp -> N
            end,
    Targets = [target(I) || I <- lists:seq(1, Shown)],
    Answers = [srv_rr(Q, I, T) || {I, T} <- lists:zip(lists:seq(1, Shown), Targets)],
    Additional = [a_rr(T, I) || {I, T} <- lists:zip(lists:seq(1, Shown), Targets)],
    {reply, encode(H, Q, Answers, Additional, 0)};
respond({fresh, N}, _, H, #dns_query{type = srv} = Q) ->
    Targets = [target(I) || I <- lists:seq(1, N)],
    Answers = [srv_rr(Q, I, T) || {I, T} <- lists:zip(lists:seq(1, N), Targets)],
    Additional = [begin
                      U = erlang:unique_integer([positive, monotonic]),
                      #dns_rr{domain = T, type = a, class = in, ttl = 0,
                              data = {127, 3 + (U div 65536) rem 200, (U div 256) rem 256,
                                      U rem 256}}
                  end || T <- Targets],
    {reply, encode(H, Q, Answers, Additional, 0)};
respond(no_additional, _, H, #dns_query{type = srv} = Q) ->
    {reply, encode(H, Q, [srv_rr(Q, I, target(I)) || I <- [1, 2]], [], 0)};
respond({no_additional, N}, _, H, #dns_query{type = srv} = Q) ->
    {reply, encode(H, Q, [srv_rr(Q, I, target(I)) || I <- lists:seq(1, N)], [], 0)};
respond({ipv6_only, N}, _, H, #dns_query{type = srv} = Q) ->
    {reply, encode(H, Q, [srv_rr(Q, I, target(I)) || I <- lists:seq(1, N)], [], 0)};
respond({ipv6_only, _}, _, H, #dns_query{type = a, domain = D} = Q) ->
    case [I || I <- lists:seq(1, 500), string:equal(target(I), D, true)] of
        [I] when I rem 2 =:= 0 ->
            %% An answer with a record, but no A record for the name.
            {reply, encode(H, Q, [#dns_rr{domain = D, type = cname, class = in, ttl = 0,
                                          data = "alias-" ++ D}], [], 0)};
        _ ->
            {reply, encode(H, Q, [], [], 0)}
    end;
respond({dual, N}, _, H, #dns_query{type = srv} = Q) ->
    Targets = [{I, target(I)} || I <- lists:seq(1, N)],
    {reply, encode(H, Q, [srv_rr(Q, I, T) || {I, T} <- Targets],
                   [a_rr(T, I) || {I, T} <- Targets], 0)};
respond({dual_additional, N}, _, H, #dns_query{type = srv} = Q) ->
    Targets = [{I, target(I)} || I <- lists:seq(1, N)],
    {reply, encode(H, Q, [srv_rr(Q, I, T) || {I, T} <- Targets],
                   lists:append([[aaaa_rr(T, I), a_rr(T, I)] || {I, T} <- Targets]), 0)};
respond(root_target, _, H, #dns_query{type = srv} = Q) ->
    {reply, encode(H, Q, [srv_rr(Q, 1, target(1)), srv_rr(Q, 2, ".")], [a_rr(target(1), 1)], 0)};
respond({Kind, _}, _, H, #dns_query{type = aaaa, domain = D} = Q)
  when Kind =:= ipv6_only; Kind =:= dual ->
    case [I || I <- lists:seq(1, 500), string:equal(target(I), D, true)] of
        [I] -> {reply, encode(H, Q, [aaaa_rr(D, I)], [], 0)};
        [] -> {reply, encode(H, Q, [], [], 3)}
    end;
respond(_, _, H, #dns_query{type = a, domain = D} = Q) ->
    case [I || I <- lists:seq(1, 500), string:equal(target(I), D, true)] of
        [I] -> {reply, encode(H, Q, [a_rr(D, I)], [], 0)};
        [] -> {reply, encode(H, Q, [], [], 3)}
    end;
respond(_, _, H, Q) ->
    {reply, encode(H, Q, [], [], 0)}.

target(I) -> "n" ++ integer_to_list(I) ++ ".node.dc1.consul".

srv_rr(#dns_query{domain = D}, I, Target) ->
    #dns_rr{domain = D, type = srv, class = in, ttl = 0, data = {1, 1, 30000 + I, Target}}.

a_rr(Target, I) ->
    #dns_rr{domain = Target, type = a, class = in, ttl = 0,
            data = {127, 0, 2, I rem 256}}.

aaaa_rr(Target, I) ->
    #dns_rr{domain = Target, type = aaaa, class = in, ttl = 0, data = {16#fd00, 0, 0, 0, 0, 0, 0, I}}.

encode(#dns_header{id = Id, rd = Rd, opcode = Op}, Q, Answers, Additional, Rcode) ->
    Header = #dns_header{id = Id, qr = true, opcode = Op, aa = true, rd = Rd, rcode = Rcode},
    iolist_to_binary(inet_dns:encode(#dns_rec{header = Header, qdlist = [Q], anlist = Answers,
                                              arlist = Additional})).
