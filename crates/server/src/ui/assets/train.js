// The job page's "Train model" form: counts the selected runs, posts the dataset, then the training job.
(function(){
var data=JSON.parse(document.getElementById('train-data').textContent);
var threshold=document.getElementById('train-threshold'),count=document.getElementById('train-count'),out=document.getElementById('train-result');
function update(){var t=parseFloat(threshold.value);var n=isNaN(t)?0:data.rewards.filter(function(r){return r>=t;}).length;
 count.textContent=n+' of '+data.rewards.length+' completed runs selected';}
threshold.addEventListener('input',update);update();
function post(url,body){return fetch(url,{method:'POST',headers:{'Content-Type':'application/json','X-Rollout-UI':'1'},body:JSON.stringify(body)})
 .then(function(res){return res.json().then(function(j){if(!res.ok){var e=j.error||{},d=(e.details&&e.details.errors)||[];
  throw new Error((e.message||'refused')+(d.length?': '+d.map(function(p){return p.field+': '+p.message;}).join('; '):''));}return j;});});}
function fail(e){out.textContent=e.message||String(e);out.className='small error-text';document.getElementById('train-button').disabled=false;}
document.getElementById('train-button').addEventListener('click',function(){
 var t=parseFloat(threshold.value);if(isNaN(t)){fail(new Error('the threshold is not a number'));return;}
 this.disabled=true;out.className='small';out.textContent='Building the dataset…';
 var name=document.getElementById('train-name').value.trim();
 post('/ui/datasets',{job:data.job,reward_min:t,name:name}).then(function(dataset){
  out.textContent='Dataset of '+dataset.trace_count+' traces; starting the training job…';
  return post('/ui/training',{dataset:dataset.id,base_model:document.getElementById('train-base').value,
   backend:document.getElementById('train-backend').value,name:name});})
 .then(function(job){location.href='/training/'+encodeURIComponent(job.id);}).catch(fail);});
})();
