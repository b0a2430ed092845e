// The environment page's scenario cards: builds the request from each card's form, renders the
// snippets on input, and runs it with the Run button.
(function(){
function py(v,ind){ind=ind||'';var n=ind+'    ';
 if(v===null)return 'None';if(v===true)return 'True';if(v===false)return 'False';
 if(typeof v!=='object')return JSON.stringify(v);
 if(Array.isArray(v)){if(!v.length)return '[]';return '[\n'+v.map(function(x){return n+py(x,n);}).join(',\n')+',\n'+ind+']';}
 var k=Object.keys(v);if(!k.length)return '{}';
 return '{\n'+k.map(function(x){return n+JSON.stringify(x)+': '+py(v[x],n);}).join(',\n')+',\n'+ind+'}';}
function shq(s){return "'"+s.replace(/'/g,"'\\''")+"'";}
function body(card){
 var args={},problems=[];
 card.querySelectorAll('[data-arg]').forEach(function(el){
  var name=el.dataset.arg,t=el.dataset.type,v;
  if(t==='boolean'){args[name]=el.checked;return;}
  if(el.value===''){if(el.required)problems.push(name+' is required');return;}
  if(t==='integer'){v=parseInt(el.value,10);}else if(t==='number'){v=parseFloat(el.value);}
  else if(t==='json'){try{v=JSON.parse(el.value);}catch(e){problems.push(name+' is not valid JSON');v=el.value;}}
  else{v=el.value;}
  args[name]=v;});
 var b={env_name:card.dataset.env,scenario_name:card.dataset.scenario,scenario_args:args,
  model:card.querySelector('.model').value};
 var steps=parseInt(card.querySelector('.max-steps').value,10);if(!isNaN(steps))b.max_steps=steps;
 var val=card.querySelector('.validation').value.trim();
 if(val){try{b.validation=JSON.parse(val);}catch(e){problems.push('validation is not valid JSON');}}
 if(card.querySelector('.sync').checked)b.sync=true;
 return {body:b,problems:problems};}
function agent(b){
 var mcp=location.origin+'/v1/environments/'+encodeURIComponent(b.env_name)+'/mcp';
 return 'import asyncio\nimport os\n\nimport hud\n\nenv = hud.Environment('+JSON.stringify(b.env_name)+')\nenv.connect_url(\n    "'+mcp+'",\n    headers={"Authorization": "Bearer " + os.environ["ROLLOUT_API_KEY"]},\n)\n\n\nasync def main():\n    task = env('+JSON.stringify(b.scenario_name)+', **'+py(b.scenario_args,'    ')+')\n    async with hud.eval(task) as ctx:\n        print(ctx.prompt)\n        # Your agent here: await ctx.call_tool("tool_name", arg=...)\n        await ctx.submit("your answer")\n    print("reward:", ctx.reward)\n\n\nasyncio.run(main())\n';}
function render(card){
 var b=body(card).body,url=location.origin+'/v1/agent/run',json=JSON.stringify(b,null,2);
 var s={agent:agent(b),
 curl:'curl -X POST '+url+' \\\n  -H "Authorization: Bearer $ROLLOUT_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '+shq(json),
 python:'import json\nimport os\nimport urllib.request\n\nbody = '+py(b)+'\nrequest = urllib.request.Request(\n    "'+url+'",\n    data=json.dumps(body).encode(),\n    headers={\n        "Authorization": "Bearer " + os.environ["ROLLOUT_API_KEY"],\n        "Content-Type": "application/json",\n    },\n    method="POST",\n)\nwith urllib.request.urlopen(request) as response:\n    print(json.dumps(json.load(response), indent=2))\n',
 javascript:'const response = await fetch("'+url+'", {\n  method: "POST",\n  headers: {\n    "Authorization": `Bearer ${process.env.ROLLOUT_API_KEY}`,\n    "Content-Type": "application/json",\n  },\n  body: JSON.stringify('+json.replace(/\n/g,'\n  ')+'),\n});\nconsole.log(await response.json());\n'};
 card.querySelectorAll('code.snippet').forEach(function(c){c.textContent=s[c.dataset.lang];});}
document.querySelectorAll('.scenario-card').forEach(function(card){
 card.querySelector('.run-form').addEventListener('submit',function(e){e.preventDefault();});
 card.addEventListener('input',function(){render(card);});
 card.addEventListener('change',function(){render(card);});
 card.querySelectorAll('.tab').forEach(function(tab){tab.addEventListener('click',function(){
  card.querySelectorAll('.tab').forEach(function(t){t.classList.toggle('active',t===tab);});
  card.querySelectorAll('code.snippet').forEach(function(c){c.parentElement.hidden=c.dataset.lang!==tab.dataset.lang;});});});
 card.querySelector('.copy').addEventListener('click',function(){
  var btn=this,code=card.querySelector('pre:not([hidden]) code.snippet').textContent;
  function done(){btn.textContent='Copied';setTimeout(function(){btn.textContent='Copy';},1500);}
  if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(code).then(done);}
  else{var t=document.createElement('textarea');t.value=code;document.body.appendChild(t);t.select();document.execCommand('copy');t.remove();done();}});
 card.querySelector('.run').addEventListener('click',function(){
  var r=body(card),out=card.querySelector('.run-result');
  if(r.problems.length){out.textContent=r.problems.join('; ');out.className='run-result small error-text';return;}
  var b=r.body;delete b.sync;out.textContent='Queueing…';out.className='run-result small';
  fetch('/ui/run',{method:'POST',headers:{'Content-Type':'application/json','X-Rollout-UI':'1'},body:JSON.stringify(b)})
  .then(function(res){return res.json().then(function(j){return {ok:res.ok,j:j};});})
  .then(function(x){if(x.ok&&x.j.trace_id){location.href='/traces/'+encodeURIComponent(x.j.trace_id);}
   else{out.textContent=(x.j.error&&x.j.error.message)||'the run was refused';out.className='run-result small error-text';}})
  .catch(function(e){out.textContent=String(e);out.className='run-result small error-text';});});
 render(card);});
})();
