// The review panel: scores (keys 1-9 pick the first categorical score's categories), labels,
// notes, the reward override, and a review queue's "Complete and next". Each change goes to
// the review API through the session's /ui/ routes, then the page reloads from the server.
(function(){
var panel=document.getElementById('review');if(!panel)return;
var trace=panel.getAttribute('data-trace'),reviewer=panel.getAttribute('data-reviewer');
var out=document.getElementById('review-error');
function send(method,url,body){
 return fetch(url,{method:method,headers:{'Content-Type':'application/json','X-Rollout-UI':'1'},body:body===undefined?undefined:JSON.stringify(body)})
 .then(function(res){return res.json().then(function(j){if(!res.ok){var e=j.error||{};throw new Error(e.message||'refused');}return j;});});}
function api(method,path,body){return send(method,'/ui/traces/'+encodeURIComponent(trace)+path,body);}
function who(body){if(reviewer){body.author=reviewer;}return body;}
function fail(e){out.textContent=e.message||String(e);}
function reload(){location.reload();}
function score(name,value){api('POST','/scores',who({name:name,value:value})).then(reload).catch(fail);}
document.querySelectorAll('.score-cat').forEach(function(b){b.addEventListener('click',function(){score(b.getAttribute('data-score'),b.getAttribute('data-value'));});});
document.querySelectorAll('.score-save').forEach(function(b){b.addEventListener('click',function(){
 var name=b.getAttribute('data-score'),input=document.getElementById('score-'+name),v=parseFloat(input.value);
 if(isNaN(v)){fail(new Error(name+' needs a number'));return;}score(name,v);});});
document.addEventListener('keydown',function(e){
 var t=e.target&&e.target.tagName;if(t==='INPUT'||t==='TEXTAREA'||t==='SELECT'||e.ctrlKey||e.metaKey||e.altKey)return;
 var b=document.querySelector('.score-cat[data-key="'+e.key+'"]');if(b){e.preventDefault();b.click();}});
document.getElementById('label-add').addEventListener('click',function(){
 var label=document.getElementById('label-input').value.trim();if(!label)return;
 api('POST','/labels',who({label:label})).then(reload).catch(fail);});
document.querySelectorAll('.remove-label').forEach(function(b){b.addEventListener('click',function(){
 var q=reviewer?'?author='+encodeURIComponent(reviewer):'';
 api('DELETE','/labels/'+encodeURIComponent(b.getAttribute('data-label'))+q).then(reload).catch(fail);});});
document.getElementById('note-add').addEventListener('click',function(){
 var body=document.getElementById('note-body').value;if(!body.trim())return;
 api('POST','/notes',who({body:body})).then(reload).catch(fail);});
document.getElementById('override-save').addEventListener('click',function(){
 var r=parseFloat(document.getElementById('override-reward').value);if(isNaN(r)){fail(new Error('the reward is not a number'));return;}
 api('PUT','/reward-override',who({reward:r,reason:document.getElementById('override-reason').value})).then(reload).catch(fail);});
var complete=document.getElementById('review-complete');
if(complete){complete.addEventListener('click',function(){complete.disabled=true;
 var body={trace_id:trace};if(reviewer){body.reviewer=reviewer;}
 send('POST','/ui/review-queues/'+encodeURIComponent(complete.getAttribute('data-queue'))+'/complete',body)
 .then(function(){location.href=complete.getAttribute('data-next');}).catch(function(e){complete.disabled=false;fail(e);});});}
})();
